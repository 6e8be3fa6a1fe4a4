"""Provisioning API for the operator's reports: usage, aggregated and de-identified (promise P15,
docs/promises.md), and the privacy promises against the running configuration."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.promises import check
from clutto_bridge.web import outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable


class ReportsAPI(Endpoints):
    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.usage = api.services.usage
        self.settings = api.services.settings

    @routes.get(
        "/promises",
        "Operator: every privacy promise as kept, weakened by a named setting, or not yet enforced",
        responses={200: o.PromiseReport},
        errors={403: "Not the operator"},
    )
    async def promises(self, request: web.Request) -> o.PromiseReport:
        """The compliance report of `clutto-bridge promises -c config.yaml` for the running configuration.

        The homeserver's own settings are not checked here; the CLI does with `--homeserver-config`."""
        if request[ACTOR] is not None:
            raise ApiError(403, "M_FORBIDDEN", "Only the operator may read the compliance report.")
        return o.PromiseReport.of(check(self.settings))

    @routes.get(
        "/reports/usage",
        "Operator: teams and members per sign-up week, plan and size; small cells suppressed",
        responses={200: o.UsageReport},
        errors={403: "Not the operator"},
    )
    async def usage_report(self, request: web.Request) -> o.UsageReport:
        """Cells describing fewer than ``analytics.k`` teams or members are left out and counted
        in ``suppressed_cells``; there are no totals, so a suppressed cell cannot be recovered."""
        report = await self.usage.report(actor=request[ACTOR])
        return o.UsageReport.of(report)
