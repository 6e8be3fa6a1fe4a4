"""Team membership as the bridge knows it: role, and what the user did with the invite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mautrix.util.async_db import Database

INVITED = "invited"
JOINED = "joined"
DECLINED = "declined"
LEFT = "left"
REMOVED = "removed"


@dataclass
class Member:
    team_id: str
    user_id: str
    role: str
    membership: str
    created_by_bridge: bool
    added_at: int

    columns: ClassVar[str] = "team_id, user_id, role, membership, created_by_bridge, added_at"

    async def insert(self, db: Database) -> None:
        await db.execute(
            f"INSERT INTO team_member ({self.columns}) VALUES ($1, $2, $3, $4, $5, $6)",
            self.team_id, self.user_id, self.role, self.membership, self.created_by_bridge, self.added_at,
        )

    async def set_membership(self, db: Database, membership: str) -> None:
        self.membership = membership
        await db.execute(
            "UPDATE team_member SET membership=$1 WHERE team_id=$2 AND user_id=$3",
            membership, self.team_id, self.user_id,
        )

    @classmethod
    async def get(cls, db: Database, team_id: str, user_id: str) -> Member | None:
        row = await db.fetchrow(
            f"SELECT {cls.columns} FROM team_member WHERE team_id=$1 AND user_id=$2", team_id, user_id
        )
        return cls(**{**row, "created_by_bridge": bool(row["created_by_bridge"])}) if row else None

    @classmethod
    async def of_team(cls, db: Database, team_id: str) -> list[Member]:
        rows = await db.fetch(
            f"SELECT {cls.columns} FROM team_member WHERE team_id=$1 ORDER BY added_at, user_id", team_id
        )
        return [cls(**{**row, "created_by_bridge": bool(row["created_by_bridge"])}) for row in rows]
