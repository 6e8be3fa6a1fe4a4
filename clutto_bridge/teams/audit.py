"""The audit log as the domain writes it: what was done, refused or disclosed, by whom, when.

Every row is chained to the one before it by hash (``crypto.chain``), and every
``checkpoint_rows`` rows (and on a timer the bridge runs, and when it stops) the newest row
is signed with the bridge's Ed25519 key, so the log can be checked offline
(``clutto-bridge audit verify``).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.clock import Clock
from clutto_bridge.crypto import chain
from clutto_bridge.crypto.signing import key_id, public_jwk
from clutto_bridge.db.audit import AuditEntry, AuditRow, AuditStore, Checkpoint, SigningKeyRecord
from clutto_bridge.db.team import Team
from clutto_bridge.metrics import Metrics

log = logging.getLogger("clutto.audit")


def _seal(row_id: int, entry: AuditEntry, previous: str) -> str:
    return chain.row_hash(row_id, entry.ts, entry.team_id, entry.actor, entry.action, entry.target, entry.detail,
                          previous)


class AuditLog:
    def __init__(
        self, store: AuditStore, clock: Clock, metrics: Metrics | None = None,
        signing_key: Ed25519PrivateKey | None = None, checkpoint_rows: int = 100,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.signing_key = signing_key
        self.checkpoint_rows = checkpoint_rows
        self._last_signed: int | None = None
        self._key_recorded = False
        self._subscribers: list[Callable[[AuditEntry], Awaitable[Any]]] = []

    def subscribe(self, callback: Callable[[AuditEntry], Awaitable[Any]]) -> None:
        """Called with every entry once it is written (the webhooks' ``audit`` event)."""
        self._subscribers.append(callback)

    async def record(self, team: Team | None, actor: str | None, action: str, target: str | None, **detail: Any) -> AuditRow:
        """``actor`` None is the operator or the bridge itself."""
        team_id = team.id if team else None
        entry = AuditEntry(self.clock.now_ms(), team_id, actor, action, target, detail)
        row = await self.store.add(entry, _seal, chain.GENESIS)
        for callback in self._subscribers:
            await callback(entry)
        if self.metrics is not None:
            # Counted by action only (redactions, purges, enforcement); never the team, actor or target.
            self.metrics.audited(action, detail)
        if self.signing_key is not None and row.id - await self._signed_up_to() >= self.checkpoint_rows:
            await self.checkpoint()
        return row

    async def _signed_up_to(self) -> int:
        if self._last_signed is None:
            self._last_signed = await self.store.last_signed_row() or 0
        return self._last_signed

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the newest row, unless a checkpoint already covers it (then nothing happens)."""
        key = self.signing_key
        if key is None:
            return None
        if not self._key_recorded:
            public = key.public_key()
            await self.store.remember_key(SigningKeyRecord(key_id(public), public_jwk(public), self.clock.now_ms()))
            self._key_recorded = True
        made = await self.store.add_checkpoint(self.clock.now_ms(), lambda row_id, head, ts: chain.sign_head(key, row_id, head, ts))
        # Another process may have signed meanwhile: ask the store rather than trusting ``made``.
        self._last_signed = await self.store.last_signed_row() or 0
        if made:
            log.debug("Audit checkpoint #%d signs row %d with key %s", made.id, made.row_id, made.key_id)
        return made

    async def for_team(self, team_id: str, action: str | None = None) -> list[AuditEntry]:
        return await self.store.for_team(team_id, action)

    async def once(self, team: Team, action: str, target: str | None) -> None:
        """Record ``action`` only if the team has no such entry yet."""
        if not await self.store.for_team(team.id, action):
            await self.record(team, None, action, target)
