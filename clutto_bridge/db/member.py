"""Team membership as the bridge knows it: role, and what the user did with the invite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mautrix.util.async_db import Database

INVITED = "invited"
JOINED = "joined"
DECLINED = "declined"
LEFT = "left"
REMOVED = "removed"
# Memberships that make someone part of a team: invited (not yet answered) or joined.
CURRENT = (INVITED, JOINED)


@dataclass
class Member:
    team_id: str
    user_id: str
    role: str
    membership: str
    created_by_bridge: bool
    added_at: int

    columns: ClassVar[str] = "team_id, user_id, role, membership, created_by_bridge, added_at"

    @property
    def current(self) -> bool:
        return self.membership in CURRENT

    @classmethod
    def _from_row(cls, row: Any) -> Member:
        return cls(**{**row, "created_by_bridge": bool(row["created_by_bridge"])})


@dataclass
class Affiliation:
    """One of a user's teams, as their own data shows it."""

    team_id: str
    team: str
    role: str
    membership: str
    added_at: int


class MemberStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, member: Member) -> None:
        await self.db.execute(
            f"INSERT INTO team_member ({Member.columns}) VALUES ($1, $2, $3, $4, $5, $6)",
            member.team_id,
            member.user_id,
            member.role,
            member.membership,
            member.created_by_bridge,
            member.added_at,
        )

    async def invite_again(self, team_id: str, user_id: str, role: str, now_ms: int) -> None:
        """A former member is invited anew: new role, invited, added now."""
        await self.db.execute(
            "UPDATE team_member SET role=$1, membership=$2, added_at=$3 WHERE team_id=$4 AND user_id=$5",
            role,
            INVITED,
            now_ms,
            team_id,
            user_id,
        )

    async def set_membership(self, member: Member, membership: str) -> None:
        member.membership = membership
        await self.db.execute(
            "UPDATE team_member SET membership=$1 WHERE team_id=$2 AND user_id=$3",
            membership,
            member.team_id,
            member.user_id,
        )

    async def set_role(self, member: Member, role: str) -> None:
        member.role = role
        await self.db.execute(
            "UPDATE team_member SET role=$1 WHERE team_id=$2 AND user_id=$3", role, member.team_id, member.user_id
        )

    async def get(self, team_id: str, user_id: str) -> Member | None:
        row = await self.db.fetchrow(
            f"SELECT {Member.columns} FROM team_member WHERE team_id=$1 AND user_id=$2", team_id, user_id
        )
        return Member._from_row(row) if row else None

    async def of_team(self, team_id: str) -> list[Member]:
        rows = await self.db.fetch(
            f"SELECT {Member.columns} FROM team_member WHERE team_id=$1 ORDER BY added_at, user_id", team_id
        )
        return [Member._from_row(row) for row in rows]

    async def current_elsewhere(self, user_id: str, team_id: str) -> int:
        """How many other teams the user currently belongs to."""
        return await self.db.fetchval(
            "SELECT COUNT(*) FROM team_member WHERE user_id=$1 AND team_id<>$2 AND membership IN ('invited','joined')",
            user_id,
            team_id,
        )

    async def only_here_and_created(self, team_id: str) -> list[str]:
        """Accounts the bridge created for this team that belong to no other team now."""
        rows = await self.db.fetch(
            "SELECT user_id FROM team_member m WHERE team_id=$1 AND created_by_bridge AND NOT EXISTS "
            "(SELECT 1 FROM team_member o WHERE o.user_id=m.user_id AND o.team_id<>m.team_id "
            "AND o.membership IN ('invited','joined'))",
            team_id,
        )
        return [row["user_id"] for row in rows]

    async def share_a_team(self, a: str, b: str) -> bool:
        count = await self.db.fetchval(
            "SELECT COUNT(*) FROM team_member x JOIN team_member y ON x.team_id=y.team_id "
            "WHERE x.user_id=$1 AND y.user_id=$2 AND x.membership IN ('invited','joined') "
            "AND y.membership IN ('invited','joined')",
            a,
            b,
        )
        return bool(count)

    async def joined_in_active_teams(self) -> list[str]:
        """Every user who joined at least one active team, each once, in a stable order."""
        rows = await self.db.fetch(
            "SELECT m.user_id, MIN(t.created_at) AS first_team, MIN(m.added_at) AS first_added FROM team_member m "
            "JOIN team t ON t.id=m.team_id WHERE t.state='active' AND m.membership='joined' "
            "GROUP BY m.user_id ORDER BY first_team, first_added, m.user_id"
        )
        return [row["user_id"] for row in rows]

    async def affiliations(self, user_id: str) -> list[Affiliation]:
        rows = await self.db.fetch(
            "SELECT t.id, t.name, m.role, m.membership, m.added_at FROM team_member m JOIN team t ON t.id=m.team_id "
            "WHERE m.user_id=$1 ORDER BY m.added_at",
            user_id,
        )
        return [Affiliation(r["id"], r["name"], r["role"], r["membership"], r["added_at"]) for r in rows]
