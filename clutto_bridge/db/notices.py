"""Members' marketing choices and the record of notices sent."""

from __future__ import annotations

from mautrix.util.async_db import Database


class NoticeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def marketing_choice(self, user_id: str) -> bool | None:
        """The member's own choice; None when they never chose (the operator's default applies)."""
        value = await self.db.fetchval("SELECT opted_in FROM marketing_choice WHERE user_id=$1", user_id)
        return None if value is None else bool(value)

    async def set_marketing(self, user_id: str, opted_in: bool, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO marketing_choice (user_id, opted_in, changed_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (user_id) DO UPDATE SET opted_in=excluded.opted_in, changed_at=excluded.changed_at",
            user_id,
            opted_in,
            now_ms,
        )

    async def record_sent(
        self, now_ms: int, kind: str, team_id: str | None, sent_by: str | None, delivered: int, skipped: int
    ) -> None:
        await self.db.execute(
            "INSERT INTO notice (ts, kind, team_id, sent_by, delivered, skipped) VALUES ($1, $2, $3, $4, $5, $6)",
            now_ms,
            kind,
            team_id,
            sent_by,
            delivered,
            skipped,
        )
