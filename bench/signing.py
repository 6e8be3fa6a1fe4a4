"""Benchmark: signed against unsigned provisioning API responses, in the same run.

Two aiohttp apps on loopback serve the same bodies; one has the bridge's signing hook
(``web/signatures.py``: RFC 9530 digest plus an RFC 9421 Ed25519 signature), the other
none. A client requests both in alternating rounds, so the machine's load hits both
alike. Bodies: a team as ``GET /teams/{id}`` returns it (20 members, 6 rooms) and the
OpenAPI document (the largest JSON the API sends). The real endpoints also read the
database and often the homeserver, so their request time is longer and the share of
signing smaller than shown here.

One signature in process, in alternating rounds: the bridge's signer (one formatted
signature base, SHA-256, Ed25519), the same response signed through http-message-signatures
(what the bridge did before), and Ed25519 alone over a base of the same size (the floor).

Then, against a real bridge (its own process, a throwaway Synapse): the time of
``GET /teams/{id}`` (signed, as every response is) against the time one signature of that
body takes, which is what signing adds to the request. Every figure is the median of the
rounds, with the spread [min-max] of the rounds in brackets.

    .venv/bin/python bench/signing.py [--requests 2000] [--rounds 5] [--real 300]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys  # noqa: E402
from clutto_bridge.demo.synapse import free_port  # noqa: E402
from clutto_bridge.web.openapi import openapi_document  # noqa: E402
from clutto_bridge.web.provisioning import PREFIX, all_routes  # noqa: E402
from clutto_bridge.web.signatures import signing_hook  # noqa: E402


def team_body() -> dict:
    members = [{"user_id": f"@member{i}:example.com", "role": "member", "membership": "joined"} for i in range(20)]
    rooms = [
        {"room_id": f"!room{i}abcdefghijklmnop:example.com", "name": f"room {i}", "kind": "group", "archived": False}
        for i in range(6)
    ]
    return {
        "id": "t0123456789",
        "name": "Acme",
        "owner": "@owner:example.com",
        "space_id": "!space:example.com",
        "state": "active",
        "plan": "trial",
        "created_at": 1,
        "trial_ends_at": 2,
        "rooms": rooms,
        "members": members,
    }


def app(bodies: dict[str, dict], signer: MessageSigner | None) -> web.Application:
    application = web.Application()
    for name, body in bodies.items():

        async def handler(request: web.Request, body=body) -> web.Response:
            return web.json_response(body)

        application.router.add_get(f"/{name}", handler)
    if signer is not None:
        application.on_response_prepare.append(signing_hook(signer))
    return application


async def serve(application: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def timed(http: aiohttp.ClientSession, url: str, requests: int, headers: dict | None = None) -> float:
    """Seconds per request, sequential (one connection kept alive)."""
    started = time.perf_counter()
    for _ in range(requests):
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200
    return (time.perf_counter() - started) / requests


async def main(requests: int, rounds: int, real: int) -> None:
    key = Ed25519PrivateKey.generate()
    signer = MessageSigner(SigningKeys(key))
    bodies = {"team": team_body(), "openapi": openapi_document(PREFIX, all_routes())}
    plain_runner, plain = await serve(app(bodies, None))
    signed_runner, signed = await serve(app(bodies, signer))
    try:
        async with aiohttp.ClientSession() as http:
            for name, body in bodies.items():
                await timed(http, f"{plain}/{name}", 50)  # warm up both
                await timed(http, f"{signed}/{name}", 50)
                plain_times, signed_times = [], []
                for _ in range(rounds):
                    plain_times.append(await timed(http, f"{plain}/{name}", requests))
                    signed_times.append(await timed(http, f"{signed}/{name}", requests))
                p, s = statistics.median(plain_times), statistics.median(signed_times)
                size = len(json.dumps(body))
                print(
                    f"{name:8} {size:7d} B  unsigned {spread(plain_times)} us  signed {spread(signed_times)} us  "
                    f"signing cost {(s - p) / s:6.1%} of the signed request time (ratio {s / p:.3f})"
                )
    finally:
        await plain_runner.cleanup()
        await signed_runner.cleanup()
    ours, library, floor = [], [], []
    for _ in range(rounds):
        ours.append(sign_only(signer, requests))
        library.append(sign_with_library(signer, requests))
        floor.append(ed25519_only(key, requests))
    print(
        f"one signature of a 2.4 kB response, us: bridge {spread(ours)}, http-message-signatures {spread(library)}, "
        f"Ed25519 alone {spread(floor)}; bridge/library {statistics.median(ours) / statistics.median(library):.2f}, "
        f"bridge/Ed25519 {statistics.median(ours) / statistics.median(floor):.2f}"
    )
    if real:
        await real_endpoint(signer, real, rounds)


async def real_endpoint(signer: MessageSigner, requests: int, rounds: int) -> None:
    """``GET /teams/{id}`` of a running bridge, and one signature of the body it answered."""
    import tempfile

    from harness import synapse_with_bridge

    with tempfile.TemporaryDirectory() as tmp:
        async with synapse_with_bridge(Path(tmp)) as (synapse, bridge):
            owner = await synapse.register_user("owner")
            bridge.start()
            async with aiohttp.ClientSession() as http:
                await bridge.ready(http)
                async with http.post(
                    f"{bridge.api}/teams", json={"name": "Bench", "owner": owner.user_id}, headers=bridge.auth
                ) as resp:
                    team = await resp.json()
                url = f"{bridge.api}/teams/{team['id']}"
                await timed(http, url, 20, bridge.auth)
                async with http.get(url, headers=bridge.auth) as resp:
                    body = await resp.read()
                per_request, signing = [], []
                for _ in range(rounds):
                    per_request.append(await timed(http, url, requests, bridge.auth))
                    signing.append(sign_only(signer, 1000, body))
            shares = [s / r for s, r in zip(signing, per_request)]
            print(
                f"real GET /teams/{{id}} ({len(body)} B), us: {spread(per_request)} per request, of which signing "
                f"{spread(signing)} = {statistics.median(shares):.1%} [{min(shares):.1%}-{max(shares):.1%}] (goal < 10%)"
            )


def sign_only(signer: MessageSigner, count: int = 2000, body: bytes | None = None) -> float:
    """Seconds to sign one response in process: what the hook adds to every request."""
    from multidict import CIMultiDict

    body = body if body is not None else json.dumps(team_body()).encode()
    started = time.perf_counter()
    for _ in range(count):
        signer.sign_response(200, CIMultiDict({"Content-Type": "application/json; charset=utf-8"}), body)
    return (time.perf_counter() - started) / count


def sign_with_library(signer: MessageSigner, count: int = 2000, body: bytes | None = None) -> float:
    """The same, through http-message-signatures (the bridge's signer before; its tests' verifier)."""
    from multidict import CIMultiDict

    from clutto_bridge.crypto.http_signatures import LABEL, RESPONSE_COMPONENTS, _Response

    body = body if body is not None else json.dumps(team_body()).encode()
    started = time.perf_counter()
    for _ in range(count):
        signer._signer.sign(
            _Response(200, CIMultiDict({"Content-Type": "application/json; charset=utf-8"})),
            key_id=signer.key_id,
            label=LABEL,
            covered_component_ids=RESPONSE_COMPONENTS,
            body=body,
        )
    return (time.perf_counter() - started) / count


def ed25519_only(key: Ed25519PrivateKey, count: int = 2000) -> float:
    """Ed25519 alone over a signature base of the usual size (the floor of any signer)."""
    base = b"x" * 240
    started = time.perf_counter()
    for _ in range(count):
        key.sign(base)
    return (time.perf_counter() - started) / count


def spread(values: list[float], scale: float = 1e6) -> str:
    return f"{statistics.median(values) * scale:.0f} [{min(values) * scale:.0f}-{max(values) * scale:.0f}]"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--real", type=int, default=300, help="requests to a real bridge (0: skip)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.rounds, args.real = 30, 1, 20
    print(f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}, {os.cpu_count()} cores")
    asyncio.run(main(args.requests, args.rounds, args.real))
