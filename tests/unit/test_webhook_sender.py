"""The signed webhook POST against a real local HTTP server: what is retried, what is not."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.demo.synapse import free_port
from clutto_bridge.outbound.webhooks import DeliveryFailed, WebhookSender
from tests.unit.helpers import Message, verifier_from


@pytest.fixture
async def receiver():
    got = []

    async def hook(request: web.Request) -> web.Response:
        got.append((request.headers.copy(), await request.read()))
        return web.Response(status=int(request.query.get("answer", "204")))

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, got
    await server.close()


@pytest.mark.parametrize(
    ("answer", "retry"), [(204, None), (503, True), (429, True), (408, True), (400, False), (410, False)]
)
async def test_the_receivers_answer_decides_whether_to_try_again(receiver, answer: int, retry: bool | None) -> None:
    server, got = receiver
    keys = SigningKeys(Ed25519PrivateKey.generate())
    sender = WebhookSender(MessageSigner(keys))
    url = str(server.make_url(f"/hook?answer={answer}"))
    try:
        if retry is None:
            assert await sender.post(url, b'{"type":"audit"}', {"X-Hook-Token": "hook-secret-value"}) == answer
        else:
            with pytest.raises(DeliveryFailed) as error:
                await sender.post(url, b'{"type":"audit"}', {"X-Hook-Token": "hook-secret-value"})
            assert error.value.retry is retry and "hook-secret-value" not in str(error.value)
    finally:
        await sender.close()
    [(headers, body)] = got
    assert headers["X-Hook-Token"] == "hook-secret-value"
    verifier_from(keys.jwks()["keys"][0]).verify(
        Message(headers, method="POST", url=url),
        body=body,
        require_components=("@method", "@target-uri", "content-type", "content-digest"),
    )


async def test_an_unreachable_receiver_is_tried_again() -> None:
    sender = WebhookSender(MessageSigner(SigningKeys(Ed25519PrivateKey.generate())))
    try:
        with pytest.raises(DeliveryFailed) as error:
            await sender.post(f"http://127.0.0.1:{free_port()}/hook", b"{}", {})
        assert error.value.retry
    finally:
        await sender.close()
