"""Prometheus metrics at ``/_clutto/metrics`` on the appservice port, with their own bearer
secret (``analytics.metrics_secret``), and the count of provisioning API requests."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

from clutto_bridge.metrics import CONTENT_TYPE, Metrics
from clutto_bridge.teams.usage import UsageService
from clutto_bridge.web.errors import error_response

METRICS_PATH = "/_clutto/metrics"
UNMATCHED = "unmatched"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MetricsEndpoint:
    def __init__(self, usage: UsageService, metrics: Metrics, secret: str) -> None:
        self.usage = usage
        self.metrics = metrics
        self.expected = secret.encode()

    def register(self, app: web.Application) -> None:
        app.router.add_get(METRICS_PATH, self.scrape)

    async def scrape(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.expected):
            return error_response(401, "M_UNKNOWN_TOKEN", "Send Authorization: Bearer <analytics.metrics_secret>.")
        self.metrics.set_snapshot(await self.usage.snapshot())
        # CONTENT_TYPE carries its own charset; aiohttp wants it in the header, not content_type.
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def count_requests(metrics: Metrics, prefix: str) -> Callable:
    """Count every provisioning request by method, route template (never the path: it holds
    ids) and final status, refusals included. Outermost, so it sees the status sent."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            metrics.api_request(request.method, _template(request, prefix), status)

    return middleware


def _template(request: web.Request, prefix: str) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    if not canonical:
        return UNMATCHED
    return canonical if canonical.startswith(prefix) else prefix + canonical
