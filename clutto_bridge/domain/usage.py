"""Usage, aggregated and de-identified (promise P15, docs/promises.md): what the metrics gauges show and the
operator's usage report. Only the operator reads either; both are counts, never names."""

from __future__ import annotations

from dataclasses import dataclass

from clutto_bridge.db.analytics import AnalyticsStore
from clutto_bridge.domain.errors import NotAllowed
from clutto_bridge.metrics import Snapshot
from clutto_bridge.policy.analytics import UsageReport, usage_report


@dataclass(kw_only=True, eq=False, repr=False)
class UsageService:
    store: AnalyticsStore
    k: int

    async def snapshot(self) -> Snapshot:
        """What exists now, for the gauges set just before a scrape."""
        return Snapshot(
            teams=await self.store.teams_by_plan_and_state(),
            members=await self.store.members_by_role(),
            rooms=await self.store.rooms_by_kind(),
            jobs=await self.store.unfinished_jobs(),
        )

    async def report(self, *, actor: str | None) -> UsageReport:
        """Teams and members per sign-up week, plan and size, cells under ``analytics.k`` suppressed."""
        if actor is not None:
            raise NotAllowed("Only the operator reads the usage report.")
        return usage_report(await self.store.team_sizes(), self.k)
