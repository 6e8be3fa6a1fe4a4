"""Request bodies on the bridge's port: read within a bounded time, parsed with bounded nesting.

One middleware on the root application (so the provisioning API, the antispam endpoints,
the portal and the appservice's transactions alike) gives every body
``appservice.body_timeout`` to arrive. It does not read the body itself (a handler may
refuse the request first, and multipart uploads are read as a stream): when the time is
up and the client is still sending, the body's stream is failed with ``BodyTimeout``, so
whatever is reading it, or reads it next, gets a 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader

from clutto_bridge.json_bodies import RefusedJson, parse_json
from clutto_bridge.web.errors import ApiError

log = logging.getLogger("clutto.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTimeout(web.HTTPRequestTimeout, asyncio.TimeoutError):
    """408 with a Matrix-style body. Also a TimeoutError: after the answer, aiohttp drains an
    unread body for a while ("lingering") and stops, closing the connection, on a TimeoutError."""

    def __init__(self, seconds: float) -> None:
        message = f"The request body did not arrive within {seconds:g} s."
        super().__init__(
            text=json.dumps({"errcode": "IO.CLUTTO.BODY_TIMEOUT", "error": message}), content_type="application/json"
        )
        self.force_close()


def body_deadline(seconds: float) -> Callable:
    """The middleware: a body still arriving ``seconds`` after its request reached the
    handlers is not read any further."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = request.content
        if not request.body_exists or body.is_eof():
            return await handler(request)
        timer = asyncio.get_running_loop().call_later(seconds, _expire, body, seconds)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    return middleware


def _expire(body: StreamReader, seconds: float) -> None:
    if not body.is_eof():  # the client is still sending
        log.info("Stopped reading a request body still arriving after %g s (appservice.body_timeout)", seconds)
        body.set_exception(BodyTimeout(seconds))


async def read_json(request: web.Request) -> Any:
    """The body as JSON (any value; callers check its shape), or a Matrix-style 400."""
    try:
        return parse_json(await request.read())
    except RefusedJson as e:
        raise ApiError(400, e.errcode, e.message) from None
