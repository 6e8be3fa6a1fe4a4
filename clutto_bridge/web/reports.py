"""Provisioning API for the operator's reports: aggregated and de-identified (promise P15, docs/promises.md)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.web import outputs as o
from clutto_bridge.web.routes import RouteTable


class ReportsAPI:
    routes = RouteTable()

    def __init__(self, ctx: Services) -> None:
        self.usage = ctx.usage

    @routes.get(
        "/reports/usage",
        "Operator: teams and members per sign-up week, plan and size; small cells suppressed",
        responses={200: o.UsageReport},
        errors={403: "Not the operator"},
    )
    async def usage_report(self, request: web.Request) -> o.UsageReport:
        """Cells describing fewer than ``analytics.k`` teams or members are left out and counted
        in ``suppressed_cells``; there are no totals, so a suppressed cell cannot be recovered."""
        report = await self.usage.report(actor=request["actor"])
        return o.UsageReport.of(report)
