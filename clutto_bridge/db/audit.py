"""The record of what the bridge did, refused or disclosed on a team's behalf: rows chained by
hash, signed checkpoints, and the public keys that signed them (rows only; the service that
writes it is ``teams.audit.AuditLog``, the chain itself is ``crypto.chain``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from clutto_bridge.db.connection import transaction

COLUMNS = "id, ts, team_id, actor, action, target, detail, prev_hash, hash"


@dataclass
class AuditEntry:
    ts: int
    team_id: str | None
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass
class AuditRow:
    """A stored row with its place in the chain."""

    id: int
    ts: int
    team_id: str | None
    actor: str | None
    action: str
    target: str | None
    detail: Any
    prev_hash: str | None
    hash: str | None

    @classmethod
    def _from_row(cls, row: Any) -> AuditRow:
        detail = json.loads(row["detail"]) if row["detail"] is not None else None
        return cls(
            row["id"],
            row["ts"],
            row["team_id"],
            row["actor"],
            row["action"],
            row["target"],
            detail,
            row["prev_hash"],
            row["hash"],
        )


@dataclass
class Checkpoint:
    """A signature over the chain's head: row ``row_id`` had hash ``head_hash``."""

    id: int
    row_id: int
    head_hash: str
    ts: int
    key_id: str
    signature: str


@dataclass
class SigningKeyRecord:
    key_id: str
    public_jwk: dict[str, str]
    first_used: int


# The hash of a new row from its id, its entry and the previous row's hash (crypto.chain).
Seal = Callable[[int, AuditEntry, str], str]
# (key id, signature) of a checkpoint over row id and hash at a time (crypto.chain).
Sign = Callable[[int, str, int], tuple[str, str]]


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def _chain_locked(self) -> AsyncIterator[Any]:
        """A transaction that holds the chain: the lock row is written first, so other writers,
        in this process or another, wait until this one commits."""
        async with transaction(self.db) as conn:
            await conn.execute("UPDATE audit_chain_lock SET appends = appends + 1 WHERE id = 1")
            yield conn

    async def add(self, entry: AuditEntry, seal: Seal, genesis: str) -> AuditRow:
        """Append ``entry`` after the newest row (``genesis`` as the previous hash of the first)."""
        detail = json.dumps(entry.detail, sort_keys=True)
        async with self._chain_locked() as conn:
            head = await conn.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            previous = head["hash"] if head else genesis
            row_id = await conn.fetchval(
                "INSERT INTO audit_log (ts, team_id, actor, action, target, detail, prev_hash) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                entry.ts,
                entry.team_id,
                entry.actor,
                entry.action,
                entry.target,
                detail,
                previous,
            )
            # The hash covers the row's id, which exists only once the row does.
            digest = seal(row_id, AuditEntry(**{**entry.__dict__, "detail": json.loads(detail)}), previous)
            await conn.execute("UPDATE audit_log SET hash=$1 WHERE id=$2", digest, row_id)
        return AuditRow(
            row_id,
            entry.ts,
            entry.team_id,
            entry.actor,
            entry.action,
            entry.target,
            json.loads(detail),
            previous,
            digest,
        )

    async def add_checkpoint(self, ts: int, sign: Sign) -> Checkpoint | None:
        """Sign the newest row unless the last checkpoint already covers it."""
        async with self._chain_locked() as conn:
            head = await conn.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            last = await conn.fetchval("SELECT MAX(row_id) FROM audit_checkpoint")
            if head is None or head["hash"] is None or (last is not None and last >= head["id"]):
                return None
            signer, signature = sign(head["id"], head["hash"], ts)
            checkpoint_id = await conn.fetchval(
                "INSERT INTO audit_checkpoint (row_id, head_hash, ts, key_id, signature) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                head["id"],
                head["hash"],
                ts,
                signer,
                signature,
            )
        return Checkpoint(checkpoint_id, head["id"], head["hash"], ts, signer, signature)

    async def latest_checkpoint(self) -> Checkpoint | None:
        row = await self.db.fetchrow(
            "SELECT id, row_id, head_hash, ts, key_id, signature FROM audit_checkpoint ORDER BY row_id DESC, id DESC "
            "LIMIT 1"
        )
        return Checkpoint(**dict(row)) if row else None

    async def hash_of_row(self, row_id: int) -> str | None:
        """The hash row ``row_id`` carries; None when there is no such row."""
        return await self.db.fetchval("SELECT hash FROM audit_log WHERE id=$1", row_id)

    async def last_signed_row(self) -> int | None:
        return await self.db.fetchval("SELECT MAX(row_id) FROM audit_checkpoint")

    async def remember_key(self, key: SigningKeyRecord) -> None:
        """Keep a signing key's public half (once), so its checkpoints verify after rotation."""
        await self.db.execute(
            "INSERT INTO audit_key (key_id, public_jwk, first_used) VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
            key.key_id,
            json.dumps(key.public_jwk, sort_keys=True),
            key.first_used,
        )

    async def keys(self) -> list[SigningKeyRecord]:
        rows = await self.db.fetch("SELECT key_id, public_jwk, first_used FROM audit_key ORDER BY first_used, key_id")
        return [SigningKeyRecord(r["key_id"], json.loads(r["public_jwk"]), r["first_used"]) for r in rows]

    async def checkpoints(self) -> list[Checkpoint]:
        rows = await self.db.fetch(
            "SELECT id, row_id, head_hash, ts, key_id, signature FROM audit_checkpoint ORDER BY row_id, id"
        )
        return [Checkpoint(**dict(r)) for r in rows]

    async def count(self) -> int:
        return await self.db.fetchval("SELECT COUNT(*) FROM audit_log")

    async def rows_after(self, after_id: int, limit: int) -> list[AuditRow]:
        """The next ``limit`` rows in id order (the chain's order), for reading a long log in pages."""
        rows = await self.db.fetch(
            f"SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
        )
        return [AuditRow._from_row(r) for r in rows]

    async def for_team(self, team_id: str, action: str | None = None) -> list[AuditEntry]:
        query = "SELECT ts, team_id, actor, action, target, detail FROM audit_log WHERE team_id=$1"
        if action is None:
            rows = await self.db.fetch(query + " ORDER BY id", team_id)
        else:
            rows = await self.db.fetch(query + " AND action=$2 ORDER BY id", team_id, action)
        return [AuditEntry(**{**row, "detail": json.loads(row["detail"] or "{}")}) for row in rows]
