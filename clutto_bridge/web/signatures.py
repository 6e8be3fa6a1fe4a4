"""Our signature on every provisioning API response (P13), and HSTS while TLS is on.

Both are ``on_response_prepare`` hooks rather than middleware: they run after every
handler, middleware and error page has shaped the response, just before the headers are
sent, so a refusal raised anywhere (401, 404, a domain error) is signed like a success.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.payload import Payload

from clutto_bridge.crypto.http_signatures import MessageSigner

log = logging.getLogger("clutto.web")

HSTS = "max-age=31536000"  # one year; no includeSubDomains: the bridge does not own the domain

Hook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def signing_hook(signer: MessageSigner) -> Hook:
    """Sign the response over ``@status``, ``content-type`` and ``content-digest``.

    A buffered body is digested here; a file (an export download) carries the digest its
    handler computed (``file_digest``). A response the hook cannot digest is refused with
    a 500 rather than sent unsigned.
    """

    async def sign(request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.Response) and not isinstance(response.body, Payload):
            signer.sign_response(response.status, response.headers, bytes(response.body or b""))
        elif isinstance(response, web.FileResponse) and "Content-Digest" in response.headers and response.status == 200:
            signer.sign_response(response.status, response.headers, None)
        elif isinstance(response, web.FileResponse):
            # 206/304/416 of a download: the digest of the whole file would not match.
            response.headers.pop("Content-Digest", None)
            signer.sign_response(response.status, response.headers, None)
        else:
            log.error("Unsigned response type %s for %s %s", type(response).__name__, request.method, request.path)
            raise web.HTTPInternalServerError(text="The response could not be signed.")

    return sign


async def file_digest(path: Path) -> str:
    """The RFC 9530 ``Content-Digest`` of a file (a Structured Field byte sequence), read off the event loop."""

    def digest() -> str:
        hasher = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 16), b""):
                hasher.update(block)
        return f"sha-256=:{base64.b64encode(hasher.digest()).decode('ascii')}:"

    return await asyncio.to_thread(digest)


async def strict_transport_security(request: web.Request, response: web.StreamResponse) -> None:
    """HSTS on every response of a bridge that serves HTTPS (appservice, API, metrics, and the
    portal once it is merged): browsers then refuse plain HTTP to it."""
    response.headers["Strict-Transport-Security"] = HSTS
