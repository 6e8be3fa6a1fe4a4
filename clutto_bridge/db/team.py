"""A Clutto team: one Matrix space, its rooms and members."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from typing import Any

from mautrix.util.async_db import Database

CREATING = "creating"
ACTIVE = "active"
GROUP = "group"
DIRECT = "direct"


@dataclass
class Team:
    id: str
    name: str
    owner: str
    space_id: str | None
    state: str
    plan: str
    created_at: int
    trial_ends_at: int
    purge_after: int
    retention_seconds: int | None = None  # None: the operator's default
    export_before_purge: bool = False
    warned_at: str = ""  # trial warnings already sent, e.g. "7d,1d"

    columns: ClassVar[str] = (
        "id, name, owner, space_id, state, plan, created_at, trial_ends_at, purge_after, "
        "retention_seconds, export_before_purge, warned_at"
    )

    @staticmethod
    def name_key(name: str) -> str:
        """Team names are unique regardless of case and surrounding space."""
        return " ".join(name.split()).casefold()

    @classmethod
    def _from_row(cls, row: Any) -> Team | None:
        return cls(**{**row, "export_before_purge": bool(row["export_before_purge"])}) if row else None

    async def insert(self, db: Database) -> None:
        await db.execute(
            f"INSERT INTO team ({self.columns}, name_key) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            self.id, self.name, self.owner, self.space_id, self.state, self.plan,
            self.created_at, self.trial_ends_at, self.purge_after, self.retention_seconds,
            self.export_before_purge, self.warned_at, self.name_key(self.name),
        )

    async def set_space(self, db: Database, space_id: str) -> None:
        self.space_id = space_id
        await db.execute("UPDATE team SET space_id=$1 WHERE id=$2", space_id, self.id)

    async def set_state(self, db: Database, state: str) -> None:
        self.state = state
        await db.execute("UPDATE team SET state=$1 WHERE id=$2", state, self.id)

    @classmethod
    async def get(cls, db: Database, team_id: str) -> Team | None:
        return cls._from_row(await db.fetchrow(f"SELECT {cls.columns} FROM team WHERE id=$1", team_id))

    @classmethod
    async def get_by_name(cls, db: Database, name: str) -> Team | None:
        row = await db.fetchrow(f"SELECT {cls.columns} FROM team WHERE name_key=$1", cls.name_key(name))
        return cls._from_row(row)

    @classmethod
    async def get_by_space(cls, db: Database, space_id: str) -> Team | None:
        return cls._from_row(await db.fetchrow(f"SELECT {cls.columns} FROM team WHERE space_id=$1", space_id))

    @classmethod
    async def get_by_room(cls, db: Database, room_id: str) -> Team | None:
        """The team a room belongs to: its space or one of its rooms."""
        row = await db.fetchrow(
            f"SELECT {cls.columns} FROM team WHERE space_id=$1 OR id=(SELECT team_id FROM team_room WHERE room_id=$1)",
            room_id,
        )
        return cls._from_row(row)

    @classmethod
    async def all(cls, db: Database) -> list[Team]:
        return [cls._from_row(row) for row in await db.fetch(f"SELECT {cls.columns} FROM team ORDER BY created_at, id")]

    @classmethod
    async def in_state(cls, db: Database, state: str) -> list[Team]:
        rows = await db.fetch(f"SELECT {cls.columns} FROM team WHERE state=$1 ORDER BY created_at", state)
        return [cls._from_row(row) for row in rows]

    @classmethod
    async def of_user(cls, db: Database, user_id: str) -> list[Team]:
        rows = await db.fetch(
            f"SELECT {', '.join('t.' + c.strip() for c in cls.columns.split(','))} FROM team t "
            "JOIN team_member m ON m.team_id = t.id WHERE m.user_id=$1 ORDER BY t.created_at",
            user_id,
        )
        return [cls._from_row(row) for row in rows]


@dataclass
class TeamRoom:
    """A room of a team: a group chat (``group``) or an individual chat (``direct``)."""

    room_id: str
    team_id: str
    kind: str
    name: str
    created_at: int
    archived_at: int | None = None
    members: str | None = None  # the two participants of a direct chat, space-separated

    columns: ClassVar[str] = "room_id, team_id, kind, name, created_at, archived_at, members"

    async def insert(self, db: Database) -> None:
        await db.execute(
            f"INSERT INTO team_room ({self.columns}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            self.room_id, self.team_id, self.kind, self.name, self.created_at, self.archived_at, self.members,
        )

    async def archive(self, db: Database, now_ms: int) -> None:
        self.archived_at = now_ms
        await db.execute("UPDATE team_room SET archived_at=$1 WHERE room_id=$2", now_ms, self.room_id)

    @classmethod
    async def get(cls, db: Database, room_id: str) -> TeamRoom | None:
        row = await db.fetchrow(f"SELECT {cls.columns} FROM team_room WHERE room_id=$1", room_id)
        return cls(**row) if row else None

    @classmethod
    async def of_team(
        cls, db: Database, team_id: str, *, kind: str | None = None, include_archived: bool = False
    ) -> list[TeamRoom]:
        archived = "" if include_archived else " AND archived_at IS NULL"
        rows = await db.fetch(
            f"SELECT {cls.columns} FROM team_room WHERE team_id=$1{archived} ORDER BY created_at, name", team_id
        )
        return [cls(**row) for row in rows if kind is None or row["kind"] == kind]

    @classmethod
    async def direct_between(cls, db: Database, team_id: str, members: str) -> TeamRoom | None:
        row = await db.fetchrow(
            f"SELECT {cls.columns} FROM team_room WHERE team_id=$1 AND kind='direct' AND members=$2 "
            "AND archived_at IS NULL",
            team_id, members,
        )
        return cls(**row) if row else None
