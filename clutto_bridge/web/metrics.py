"""Prometheus metrics at ``/_clutto/metrics`` on the appservice port, with their own bearer
secret (``analytics.metrics_secret``), and the count of provisioning API requests."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from clutto_bridge.domain.usage import UsageService
from clutto_bridge.metrics import CONTENT_TYPE, Metrics
from clutto_bridge.web.errors import error_response
from clutto_bridge.web.middleware import after_each_request

METRICS_PATH = "/_clutto/metrics"
UNMATCHED = "unmatched"


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

    return after_each_request(
        lambda request, status: metrics.api_request(request.method, _template(request, prefix), status)
    )


def _template(request: web.Request, prefix: str) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    if not canonical:
        return UNMATCHED
    return canonical if canonical.startswith(prefix) else prefix + canonical
