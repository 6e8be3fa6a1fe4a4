"""Access records of the requests the bridge serves (promise P4): kept in the form the web
layer made them (``policy.collection``), and only for ``policy.collection.retention``.

Records are written behind the request: a request only appends to a buffer, and one writer
task at a time stores what has gathered in a batch, so a busy port pays one database write
per burst instead of one per request. The writer lets a burst gather for ``GATHER_S``
before it writes (without it, a port at 10 requests in flight wrote every 5 requests, and
those writes cost more than the rest of the records). ``close`` (at shutdown) and every
read store what is left first.
"""

from __future__ import annotations

import asyncio
import logging

from clutto_bridge.clock import Clock
from clutto_bridge.db.access import AccessRecord, AccessStore
from clutto_bridge.policy.collection import RequestFacts

log = logging.getLogger("clutto.access")

# A buffer never grows past this while the database is slow or down: the oldest go first
# (access records are the one kind of data the bridge would rather lose than keep too much of).
MAX_PENDING = 10_000
# How long the writer waits for a burst to gather before it writes (a restart loses at most
# this much, and a read waits at most this much for the records before it).
GATHER_S = 0.1


class AccessRecords:
    def __init__(self, store: AccessStore, clock: Clock, retention_s: int) -> None:
        self.store = store
        self.clock = clock
        self.retention_ms = retention_s * 1000
        self._pending: list[AccessRecord] = []
        self._writer: asyncio.Task | None = None

    def record(self, method: str, route: str, status: int, facts: RequestFacts) -> None:
        self._pending.append(
            AccessRecord(
                self.clock.now_ms(),
                method,
                route,
                status,
                facts.client,
                facts.user_agent,
                facts.referrer,
                facts.language,
            )
        )
        if len(self._pending) > MAX_PENDING:
            del self._pending[: len(self._pending) - MAX_PENDING]
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="clutto-access-records")

    async def _write(self) -> None:
        while self._pending:
            await asyncio.sleep(GATHER_S)  # batching, not synchronisation: let a burst gather
            batch, self._pending = self._pending, []
            try:
                await self.store.add(batch)
            except Exception:
                log.warning("Could not store %d access record(s)", len(batch), exc_info=True)
                return

    async def flush(self) -> None:
        """Wait until every record so far is stored."""
        while self._writer is not None and not self._writer.done() or self._pending:
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write(), name="clutto-access-records")
            await asyncio.gather(self._writer, return_exceptions=True)

    async def close(self) -> None:
        await self.flush()

    async def forget_expired(self) -> int:
        """Delete records older than the retention (run by the schedule); return how many went."""
        await self.flush()
        gone = await self.store.forget_before(self.clock.now_ms() - self.retention_ms)
        if gone:
            log.info("Deleted %d access record(s) older than policy.collection.retention", gone)
        return gone

    async def recent(self, limit: int = 1000) -> list[AccessRecord]:
        await self.flush()
        return await self.store.recent(limit)
