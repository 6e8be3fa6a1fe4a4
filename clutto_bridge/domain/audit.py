"""The audit log as the domain writes it: what was done, refused or disclosed, by whom, when.

Every row is chained to the one before it by hash (``crypto.chain``), and every
``checkpoint_rows`` rows (and on a timer the bridge runs, and when it stops) the newest row
is signed with the bridge's Ed25519 key, so the log can be checked offline
(``clutto-bridge audit verify``). The newest checkpoint is also written to the witness file
beside the keyset (``crypto.witness``), outside the database, so cutting the log's end off
together with its checkpoints is caught too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clutto_bridge.clock import Clock
from clutto_bridge.crypto import chain
from clutto_bridge.crypto.signing import key_id, public_jwk
from clutto_bridge.crypto.witness import WitnessedHead, WitnessError, WitnessFile
from clutto_bridge.db.audit import AuditEntry, AuditRow, AuditStore, Checkpoint, SigningKeyRecord
from clutto_bridge.db.team import Team
from clutto_bridge.metrics import Metrics
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.audit")


def _seal(row_id: int, entry: AuditEntry, previous: str) -> str:
    return chain.row_hash(
        row_id, entry.ts, entry.team_id, entry.actor, entry.action, entry.target, entry.detail, previous
    )


@dataclass(kw_only=True, eq=False, repr=False)
class AuditLog:
    store: AuditStore
    clock: Clock
    metrics: Metrics | None = None
    signing_key: Ed25519PrivateKey | None = None
    checkpoint_rows: int = 100
    witness: WitnessFile | None = None
    _last_signed: int | None = field(init=False, default=None)
    _key_recorded: bool = field(init=False, default=False)
    _witness_refused: str | None = field(init=False, default=None)
    _subscribers: list[Callable[[AuditEntry], Awaitable[Any]]] = field(init=False, default_factory=list)

    def subscribe(self, callback: Callable[[AuditEntry], Awaitable[Any]]) -> None:
        """Called with every entry once it is written (the webhooks' ``audit`` event)."""
        self._subscribers.append(callback)

    async def record(
        self,
        team: Team | None,
        actor: str | None,
        action: AuditAction,
        target: str | None,
        **detail: Any,
    ) -> AuditRow:
        """``actor`` None is the operator or the bridge itself. ``action`` is one of ``AuditAction``
        (a plain string that is none of them is refused, so the generated list stays complete); the row
        stores its value."""
        team_id = team.id if team else None
        entry = AuditEntry(self.clock.now_ms(), team_id, actor, AuditAction.named(action).value, target, detail)
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
        made = await self.store.add_checkpoint(
            self.clock.now_ms(), lambda row_id, head, ts: chain.sign_head(key, row_id, head, ts)
        )
        # Another process may have signed meanwhile: ask the store rather than trusting ``made``.
        self._last_signed = await self.store.last_signed_row() or 0
        if made:
            log.debug("Audit checkpoint #%d signs row %d with key %s", made.id, made.row_id, made.key_id)
        await self.witness_latest()
        return made

    async def witness_latest(self) -> None:
        """Write the newest checkpoint (this process's or another's) to the witness file, if
        the log still holds the one the witness has: a log that lost it stays caught."""
        if self.witness is None:
            return
        latest = await self.store.latest_checkpoint()
        if latest is None:
            return
        try:
            current = await asyncio.to_thread(self.witness.load)
            if current is not None:
                held = current.checkpoint
                if held.row_id >= latest.row_id:
                    return
                if await self.store.hash_of_row(held.row_id) != held.head_hash:
                    self._refuse(f"the log no longer holds row {held.row_id} as checkpoint {held.id} signed it")
                    return
            await asyncio.to_thread(self.witness.advance, WitnessedHead(**latest.__dict__))
        except (WitnessError, OSError) as e:
            self._refuse(str(e))

    def _refuse(self, why: str) -> None:
        """Said once per process: the witness is kept as it is, for ``audit verify`` to report."""
        if why != self._witness_refused:
            self._witness_refused = why
            log.error(
                "The audit witness %s is not updated: %s. Run `clutto-bridge audit verify`; if the database "
                "was restored or replaced on purpose, move the witness away.",
                self.witness and self.witness.path,
                why,
            )

    async def for_team(self, team_id: str, action: AuditAction | None = None) -> list[AuditEntry]:
        return await self.store.for_team(team_id, AuditAction.named(action).value if action is not None else None)

    async def once(self, team: Team, action: AuditAction, target: str | None) -> None:
        """Record ``action`` only if the team has no such entry yet."""
        if not await self.for_team(team.id, action):
            await self.record(team, None, action, target)
