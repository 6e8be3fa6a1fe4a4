"""``GET /_clutto/health``: the bridge answers, from its event loop, within a deadline (issue 23).

For the Dockerfile's ``HEALTHCHECK`` (``clutto-bridge health``) and any load balancer or
monitor. It is answered by the event loop that answers the homeserver, after the same
self-check as the systemd watchdog (the query behind the homeserver's questions): a hung
loop leaves the request unanswered (the probe's own timeout fails it), a database that
does not answer within ``TIMEOUT`` gives 503. No secret: it says nothing but "ok".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from clutto_bridge.watchdog import Watchdog
from clutto_bridge.web.errors import error_response

HEALTH_PATH = "/_clutto/health"
TIMEOUT = 5.0  # seconds the self-check may take; `clutto-bridge health` waits a little longer


class HealthEndpoint:
    def __init__(self, self_check: Callable[[], Awaitable[object]]) -> None:
        self.watchdog = Watchdog(self_check, environ={})  # only its timed self-check; never notifies

    def register(self, app: web.Application) -> None:
        app.router.add_get(HEALTH_PATH, self.health)

    async def health(self, request: web.Request) -> web.Response:
        if not await self.watchdog.alive(TIMEOUT):
            return error_response(
                503, "M_UNKNOWN", "The bridge's self-check failed: its database did not answer in time."
            )
        return web.json_response({"status": "ok"})
