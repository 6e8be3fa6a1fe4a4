"""Which teams take mail, at which address, and the room their email notices go to.

Nothing of a message is kept here: no header, no body, no count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mautrix.util.async_db import Database


@dataclass
class TeamAddress:
    team_id: str
    local_part: str
    enabled: bool
    room_id: str | None
    changed_at: int

    columns: ClassVar[str] = "team_id, local_part, enabled, room_id, changed_at"

    @classmethod
    def _from_row(cls, row: Any) -> TeamAddress | None:
        return cls(**{**row, "enabled": bool(row["enabled"])}) if row else None


class EmailStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_team(self, team_id: str) -> TeamAddress | None:
        row = await self.db.fetchrow(f"SELECT {TeamAddress.columns} FROM team_email WHERE team_id=$1", team_id)
        return TeamAddress._from_row(row)

    async def by_local_part(self, local_part: str) -> TeamAddress | None:
        row = await self.db.fetchrow(f"SELECT {TeamAddress.columns} FROM team_email WHERE local_part=$1", local_part)
        return TeamAddress._from_row(row)

    async def insert(self, address: TeamAddress) -> None:
        await self.db.execute(
            f"INSERT INTO team_email ({TeamAddress.columns}) VALUES ($1, $2, $3, $4, $5)",
            address.team_id,
            address.local_part,
            address.enabled,
            address.room_id,
            address.changed_at,
        )

    async def set_enabled(self, address: TeamAddress, enabled: bool, now_ms: int) -> None:
        address.enabled, address.changed_at = enabled, now_ms
        await self.db.execute(
            "UPDATE team_email SET enabled=$1, changed_at=$2 WHERE team_id=$3", enabled, now_ms, address.team_id
        )

    async def set_room(self, address: TeamAddress, room_id: str) -> None:
        address.room_id = room_id
        await self.db.execute("UPDATE team_email SET room_id=$1 WHERE team_id=$2", room_id, address.team_id)
