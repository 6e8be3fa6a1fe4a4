"""What the bot itself must remember: its direct chats and the welcomes it sent."""

from __future__ import annotations

import time

from mautrix.util.async_db import Database


class ManagementRooms:
    """Direct chats between a user and the bot, where commands need no prefix."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, room_id: str, user_id: str) -> None:
        # Wall-clock milliseconds: only which chat is the newest, never a policy time.
        await self.db.execute(
            "INSERT INTO management_room (room_id, user_id, added_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (room_id) DO UPDATE SET user_id=excluded.user_id, added_at=excluded.added_at",
            room_id,
            user_id,
            int(time.time() * 1000),
        )

    async def owner_of(self, room_id: str) -> str | None:
        return await self.db.fetchval("SELECT user_id FROM management_room WHERE room_id=$1", room_id)

    async def room_of(self, user_id: str) -> str | None:
        """The user's newest direct chat with the bot: the one they last opened is where they look."""
        return await self.db.fetchval(
            "SELECT room_id FROM management_room WHERE user_id=$1 ORDER BY added_at DESC, room_id LIMIT 1", user_id
        )

    async def rooms_of(self, user_id: str) -> list[str]:
        """Every direct chat the bot keeps with the user, the newest first."""
        rows = await self.db.fetch(
            "SELECT room_id FROM management_room WHERE user_id=$1 ORDER BY added_at DESC, room_id", user_id
        )
        return [row["room_id"] for row in rows]

    async def remove(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM management_room WHERE room_id=$1", room_id)

    async def current_team(self, room_id: str) -> str | None:
        """The team the user chose (`team use`) for commands in this chat."""
        return await self.db.fetchval("SELECT current_team FROM management_room WHERE room_id=$1", room_id)

    async def set_current_team(self, room_id: str, team_id: str | None) -> None:
        await self.db.execute("UPDATE management_room SET current_team=$2 WHERE room_id=$1", room_id, team_id)


class TeamWelcomes:
    """Which team's welcome each user got: one welcome per team, however often they join."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def welcomed(self, team_id: str, user_id: str) -> bool:
        row = await self.db.fetchval("SELECT 1 FROM team_welcome WHERE team_id=$1 AND user_id=$2", team_id, user_id)
        return row is not None

    async def record(self, team_id: str, user_id: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO team_welcome (team_id, user_id, welcomed_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (team_id, user_id) DO NOTHING",
            team_id,
            user_id,
            now_ms,
        )
