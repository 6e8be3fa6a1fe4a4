"""The audit log as the domain writes it: what was done or refused, by whom, when."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from clutto_bridge.clock import Clock
from clutto_bridge.db.audit import AuditEntry, AuditStore
from clutto_bridge.db.team import Team
from clutto_bridge.metrics import Metrics


class AuditLog:
    def __init__(self, store: AuditStore, clock: Clock, metrics: Metrics | None = None) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._subscribers: list[Callable[[AuditEntry], Awaitable[Any]]] = []

    def subscribe(self, callback: Callable[[AuditEntry], Awaitable[Any]]) -> None:
        """Called with every entry once it is written (the webhooks' ``audit`` event)."""
        self._subscribers.append(callback)

    async def record(self, team: Team | None, actor: str | None, action: str, target: str | None, **detail: Any) -> None:
        """``actor`` None is the operator or the bridge itself."""
        team_id = team.id if team else None
        entry = AuditEntry(self.clock.now_ms(), team_id, actor, action, target, detail)
        await self.store.add(entry)
        for callback in self._subscribers:
            await callback(entry)
        if self.metrics is not None:
            # Counted by action only (redactions, purges, enforcement); never the team, actor or target.
            self.metrics.audited(action, detail)

    async def for_team(self, team_id: str, action: str | None = None) -> list[AuditEntry]:
        return await self.store.for_team(team_id, action)

    async def once(self, team: Team, action: str, target: str | None) -> None:
        """Record ``action`` only if the team has no such entry yet."""
        if not await self.store.for_team(team.id, action):
            await self.record(team, None, action, target)
