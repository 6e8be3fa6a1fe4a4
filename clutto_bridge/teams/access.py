"""Access records of the requests the bridge serves (promise P4): kept in the form the web
layer made them (``policy.collection``), and only for ``policy.collection.retention``."""

from __future__ import annotations

import logging

from clutto_bridge.clock import Clock
from clutto_bridge.db.access import AccessRecord, AccessStore
from clutto_bridge.policy.collection import RequestFacts

log = logging.getLogger("clutto.access")


class AccessRecords:
    def __init__(self, store: AccessStore, clock: Clock, retention_s: int) -> None:
        self.store = store
        self.clock = clock
        self.retention_ms = retention_s * 1000

    async def record(self, method: str, route: str, status: int, facts: RequestFacts) -> None:
        await self.store.add(AccessRecord(
            self.clock.now_ms(), method, route, status, facts.client, facts.user_agent, facts.referrer, facts.language,
        ))

    async def forget_expired(self) -> int:
        """Delete records older than the retention (run by the schedule); return how many went."""
        gone = await self.store.forget_before(self.clock.now_ms() - self.retention_ms)
        if gone:
            log.info("Deleted %d access record(s) older than policy.collection.retention", gone)
        return gone

    async def recent(self, limit: int = 1000) -> list[AccessRecord]:
        return await self.store.recent(limit)
