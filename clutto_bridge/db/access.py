"""Access records: the requests the bridge served, each only in the form ``policy.collection``
allows (the web layer decides; this store keeps what it is given and forgets it in time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mautrix.util.async_db import Database

from clutto_bridge.db.connection import transaction


@dataclass(frozen=True)
class AccessRecord:
    at: int
    method: str
    route: str  # the route template, never the path as requested
    status: int
    client: str | None
    user_agent: str | None
    referrer: str | None
    language: str | None

    columns: ClassVar[str] = "at, method, route, status, client, user_agent, referrer, language"

    @classmethod
    def _from_row(cls, row: Any) -> AccessRecord:
        return cls(**row)


class AccessStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, records: list[AccessRecord]) -> None:
        """Insert a batch in one statement per row, one transaction for all (without the
        transaction SQLite, in autocommit, committed every row: 50 µs of CPU a record)."""
        async with transaction(self.db) as conn:
            await conn.executemany(
                f"INSERT INTO access_record ({AccessRecord.columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [(r.at, r.method, r.route, r.status, r.client, r.user_agent, r.referrer, r.language) for r in records],
            )

    async def forget_before(self, cutoff_ms: int) -> int:
        """Delete records older than ``cutoff_ms``; return how many went."""
        rows = await self.db.fetch("DELETE FROM access_record WHERE at < $1 RETURNING id", cutoff_ms)
        return len(rows)

    async def recent(self, limit: int = 1000) -> list[AccessRecord]:
        """The newest records first (for the operator and the tests)."""
        rows = await self.db.fetch(
            f"SELECT {AccessRecord.columns} FROM access_record ORDER BY at DESC, id DESC LIMIT $1", limit
        )
        return [AccessRecord._from_row(row) for row in rows]
