"""P13: our signature on API responses and webhooks, checked by an independent verifier.

The verifier is the library's own, configured with nothing but the JWK published at
``GET /_clutto/v1/keys`` (fetched without a token), as a receiver of ours would set it up.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from http_message_signatures import HTTPMessageVerifier, InvalidSignature, MappingKeyResolver, algorithms
from multidict import CIMultiDict

from clutto_bridge.demo.synapse import free_port
from tests.integration.conftest import Bridges, unique
from tests.integration.matrix_client import wait_until

RESPONSE = ("@status", "content-type", "content-digest")
REQUEST = ("@method", "@target-uri", "content-type", "content-digest")


class Response:
    def __init__(self, status: int, headers) -> None:
        self.status_code, self.headers = status, headers


class Request:
    def __init__(self, method: str, url: str, headers) -> None:
        self.method, self.url, self.headers = method, url, headers


async def published_verifier(base: str, http: aiohttp.ClientSession) -> HTTPMessageVerifier:
    """A verifier that knows only the keys the bridge publishes."""
    async with http.get(f"{base}/keys") as resp:  # no Authorization header
        assert resp.status == 200
        jwks = await resp.json()
    public = {}
    for jwk in jwks["keys"]:
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
        public[jwk["kid"]] = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    return HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys=public, private_keys={}),
    )


@dataclass
class Receiver:
    """A webhook receiver: answers 503 to its first ``fail_first`` deliveries, then 200."""

    fail_first: int = 0
    port: int = field(default_factory=free_port)
    got: list[tuple[int, str, CIMultiDict, bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/clutto?src=test"

    async def handle(self, request: web.Request) -> web.Response:
        status = 503 if len(self.got) < self.fail_first else 200
        self.got.append((status, str(request.url), CIMultiDict(request.headers), await request.read()))
        return web.Response(status=status)

    def delivered(self, event: str) -> list[tuple[str, CIMultiDict, bytes]]:
        return [(u, h, b) for s, u, h, b in self.got if s == 200 and json.loads(b)["type"] == event]


@pytest.fixture
async def receiver() -> Receiver:
    hook = Receiver(fail_first=1)
    app = web.Application()
    app.router.add_post("/hooks/clutto", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", hook.port).start()
    yield hook
    await runner.cleanup()


# One database: the signature covers the HTTP answer, whatever produced it.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P13")
async def test_api_responses_verify_with_the_published_key_and_a_changed_byte_fails(
    bridges: Bridges,
    http: aiohttp.ClientSession,
    new_user,
) -> None:
    bridge = await bridges.start()
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1"
    auth = {"Authorization": f"Bearer {bridge.settings.provisioning.shared_secret}"}
    verifier = await published_verifier(base, http)
    owner = await new_user("owner")
    answers = []
    for method, path, body, headers in [
        ("POST", "/teams", {"name": unique("Signed"), "owner": owner.user_id}, auth),
        ("GET", "/teams", None, auth),
        ("GET", "/teams/no-such-team", None, auth),
        ("GET", "/teams", None, {}),
        ("GET", "/keys", None, {}),
    ]:
        async with http.request(method, base + path, json=body, headers=headers) as resp:
            answers.append((resp.status, resp.headers, await resp.read()))
    assert [status for status, _, _ in answers] == [201, 200, 404, 401, 200]
    for status, headers, body in answers:
        [result] = verifier.verify(Response(status, headers), body=body, require_components=RESPONSE)
        assert result.parameters["keyid"] and result.parameters["created"]

    status, headers, body = answers[0]
    with pytest.raises(InvalidSignature):
        verifier.verify(Response(200, headers), body=body)  # the status changed
    changed = body.replace(b'"active"', b'"activf"')
    assert changed != body
    with pytest.raises(InvalidSignature):
        verifier.verify(Response(status, headers), body=changed)


@pytest.mark.promise("P13")
async def test_webhooks_are_signed_retried_and_verify_with_the_published_key(
    bridges: Bridges,
    http: aiohttp.ClientSession,
    new_user,
    receiver: Receiver,
) -> None:
    settings = bridges.settings(
        webhooks=[
            {
                "url": receiver.url,
                "events": ["audit", "team.purged", "export.ready"],
                "headers": {"X-Hook-Token": "receiver-secret"},
            }
        ],
        jobs__retry_backoff="1s",
        jobs__poll_interval="1s",
    )
    bridge = await bridges.start(settings)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1"
    auth = {"Authorization": f"Bearer {bridge.settings.provisioning.shared_secret}"}
    owner = await new_user("owner")
    name = unique("Hooked")
    async with http.post(f"{base}/teams", json={"name": name, "owner": owner.user_id}, headers=auth) as resp:
        assert resp.status == 201
        team = await resp.json()
    async with http.post(f"{base}/teams/{team['id']}/exports", headers=auth) as resp:
        assert resp.status == 202, await resp.text()
        job = await resp.json()
    await wait_until(lambda: _now(receiver.delivered("export.ready")), 60, "the export.ready webhook")
    verifier = await published_verifier(base, http)
    async with http.get(f"{base}/teams/{team['id']}/exports/{job['id']}/manifest.json", headers=auth) as resp:
        assert resp.status == 200
        manifest = await resp.read()  # a file download is signed too, with the digest of the file
        verifier.verify(Response(resp.status, resp.headers), body=manifest, require_components=RESPONSE)
    async with http.delete(f"{base}/teams/{team['id']}", json={"confirm": name}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
    await wait_until(lambda: _now(receiver.delivered("team.purged")), 60, "the team.purged webhook")

    assert receiver.got[0][0] == 503  # the first delivery was refused and retried later
    for event in ("export.ready", "team.purged", "audit"):
        url, headers, body = receiver.delivered(event)[0]
        verifier.verify(Request("POST", url, headers), body=body, require_components=REQUEST)
        assert headers["X-Hook-Token"] == "receiver-secret"
    _, _, ready = receiver.delivered("export.ready")[0]
    assert json.loads(ready)["data"]["job_id"] == job["id"] and json.loads(ready)["team_id"] == team["id"]
    url, headers, purged = receiver.delivered("team.purged")[0]
    assert json.loads(purged)["team_id"] == team["id"]
    actions = {json.loads(b)["data"]["action"] for _, _, b in receiver.delivered("audit")}
    assert {"export_created", "team_deleted"} <= actions

    with pytest.raises(InvalidSignature):
        verifier.verify(Request("POST", url, headers), body=purged.replace(team["id"].encode(), b"someone-else"))
    with pytest.raises(InvalidSignature):
        verifier.verify(Request("POST", url.replace("src=test", "src=evil"), headers), body=purged)


async def _now(value):
    """``wait_until`` awaits its check; the receiver's list is already at hand."""
    await asyncio.sleep(0)
    return value
