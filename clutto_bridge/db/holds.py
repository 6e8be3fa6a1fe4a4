"""Legal holds: a room, or a whole team (room_id ''), that retention and purges must not touch."""

from __future__ import annotations

from mautrix.util.async_db import Database

WHOLE_TEAM = ""


class HoldStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def exists(self, team_id: str, room_id: str) -> bool:
        return bool(
            await self.db.fetchval("SELECT 1 FROM legal_hold WHERE team_id=$1 AND room_id=$2", team_id, room_id)
        )

    async def place(self, team_id: str, room_id: str, placed_by: str | None, now_ms: int, reason: str) -> None:
        await self.db.execute(
            "INSERT INTO legal_hold (team_id, room_id, placed_by, placed_at, reason) VALUES ($1, $2, $3, $4, $5)",
            team_id,
            room_id,
            placed_by,
            now_ms,
            reason,
        )

    async def lift(self, team_id: str, room_id: str) -> None:
        await self.db.execute("DELETE FROM legal_hold WHERE team_id=$1 AND room_id=$2", team_id, room_id)

    async def of_team(self, team_id: str) -> set[str]:
        """Held room IDs; ``WHOLE_TEAM`` in the set means every room of the team is held."""
        return {r["room_id"] for r in await self.db.fetch("SELECT room_id FROM legal_hold WHERE team_id=$1", team_id)}
