"""Consent records (who accepted which policy version), who was told of which version, and
the history of a member's privacy choices."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database


@dataclass
class Acceptance:
    version: str
    accepted_at: int


@dataclass
class Choice:
    choice: str
    value: str
    ts: int


class ConsentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def accepted(self, user_id: str) -> list[Acceptance]:
        """Every acceptance of the user, oldest first."""
        rows = await self.db.fetch(
            "SELECT version, accepted_at FROM policy_consent WHERE user_id=$1 ORDER BY accepted_at", user_id
        )
        return [Acceptance(r["version"], r["accepted_at"]) for r in rows]

    async def accept(self, user_id: str, version: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO policy_consent (user_id, version, accepted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            user_id,
            version,
            now_ms,
        )

    async def was_told(self, user_id: str, version: str) -> bool:
        return (
            await self.db.fetchval("SELECT 1 FROM policy_notice WHERE user_id=$1 AND version=$2", user_id, version)
            is not None
        )

    async def mark_told(self, user_id: str, version: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO policy_notice (user_id, version, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            user_id,
            version,
            now_ms,
        )

    async def record_choice(self, user_id: str, choice: str, value: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO privacy_choice (user_id, choice, value, ts) VALUES ($1, $2, $3, $4)",
            user_id,
            choice,
            value,
            now_ms,
        )

    async def choices(self, user_id: str) -> list[Choice]:
        rows = await self.db.fetch("SELECT choice, value, ts FROM privacy_choice WHERE user_id=$1 ORDER BY id", user_id)
        return [Choice(r["choice"], r["value"], r["ts"]) for r in rows]
