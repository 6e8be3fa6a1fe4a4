"""Benchmark: signed against unsigned provisioning API responses, in the same run.

Two aiohttp apps on loopback serve the same bodies; one has the bridge's signing hook
(``web/signatures.py``: RFC 9530 digest plus an RFC 9421 Ed25519 signature), the other
none. A client requests both in alternating rounds, so the machine's load hits both
alike. Bodies: a team as ``GET /teams/{id}`` returns it (20 members, 6 rooms) and the
OpenAPI document (the largest JSON the API sends). The real endpoints also read the
database and often the homeserver, so their request time is longer and the share of
signing smaller than shown here.

Then, against a real bridge (its own process, a throwaway Synapse): the time of
``GET /teams/{id}`` (signed, as every response is) against the time one signature of that
body takes, which is what signing adds to the request.

    .venv/bin/python bench/signing.py [--requests 2000] [--rounds 5] [--real 300]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from clutto_bridge.web.provisioning import PREFIX, all_routes  # noqa: E402
from clutto_bridge.web.openapi import openapi_document  # noqa: E402
from clutto_bridge.web.signatures import signing_hook  # noqa: E402


def team_body() -> dict:
    members = [{"user_id": f"@member{i}:example.com", "role": "member", "membership": "joined"} for i in range(20)]
    rooms = [{"room_id": f"!room{i}abcdefghijklmnop:example.com", "name": f"room {i}", "kind": "group",
              "archived": False} for i in range(6)]
    return {"id": "t0123456789", "name": "Acme", "owner": "@owner:example.com", "space_id": "!space:example.com",
            "state": "active", "plan": "trial", "created_at": 1, "trial_ends_at": 2, "rooms": rooms,
            "members": members}


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
    signer = MessageSigner(SigningKeys(Ed25519PrivateKey.generate()))
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
                print(f"{name:8} {size:7d} B  unsigned {1 / p:7.0f} req/s ({p * 1e6:6.0f} us)  "
                      f"signed {1 / s:7.0f} req/s ({s * 1e6:6.0f} us)  "
                      f"signing cost {(s - p) / s:6.1%} of the signed request time (ratio {s / p:.3f})")
    finally:
        await plain_runner.cleanup()
        await signed_runner.cleanup()
    print(f"signing alone: {sign_only(signer) * 1e6:.0f} us per response (digest of 2.4 kB, signature base, Ed25519)")
    if real:
        await real_endpoint(signer, real)


async def real_endpoint(signer: MessageSigner, requests: int) -> None:
    """``GET /teams/{id}`` of a running bridge, and one signature of the body it answered."""
    import tempfile

    from harness import bridge_for, make_bot_admin

    from clutto_bridge.demo.synapse import LocalSynapse

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        synapse = LocalSynapse(folder / "synapse")
        bridge = bridge_for(synapse, folder)
        synapse.write_config([folder / "registration.yaml"])
        await asyncio.to_thread(synapse.start)
        try:
            await make_bot_admin(synapse, bridge)
            owner = await synapse.register_user("owner")
            bridge.start()
            async with aiohttp.ClientSession() as http:
                await bridge.ready(http)
                async with http.post(f"{bridge.api}/teams", json={"name": "Bench", "owner": owner.user_id},
                                     headers=bridge.auth) as resp:
                    team = await resp.json()
                url = f"{bridge.api}/teams/{team['id']}"
                await timed(http, url, 20, bridge.auth)
                per_request = await timed(http, url, requests, bridge.auth)
                async with http.get(url, headers=bridge.auth) as resp:
                    body = await resp.read()
            signing = sign_only(signer, 1000, body)
            print(f"real GET /teams/{{id}} ({len(body)} B): {per_request * 1e6:.0f} us per request, of which signing "
                  f"{signing * 1e6:.0f} us = {signing / per_request:.1%}")
        finally:
            bridge.stop()
            synapse.stop()


def sign_only(signer: MessageSigner, count: int = 2000, body: bytes | None = None) -> float:
    """Seconds to sign one response in process: what the hook adds to every request."""
    from multidict import CIMultiDict

    body = body if body is not None else json.dumps(team_body()).encode()
    started = time.perf_counter()
    for _ in range(count):
        signer.sign_response(200, CIMultiDict({"Content-Type": "application/json; charset=utf-8"}), body)
    return (time.perf_counter() - started) / count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--real", type=int, default=300, help="requests to a real bridge (0: skip)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.rounds, args.real = 30, 1, 20
    asyncio.run(main(args.requests, args.rounds, args.real))
