"""A Clutto team (one Matrix space) and its rooms, with the queries that read and write them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from mautrix.util.async_db import Connection, Database

from clutto_bridge.db.connection import transaction
from clutto_bridge.db.member import Member


class TeamState(StrEnum):
    """Where a team is in its life: built in steps, in use, or being shut down."""

    CREATING = "creating"
    ACTIVE = "active"
    DELETING = "deleting"


class RoomKind(StrEnum):
    GROUP = "group"  # a group chat in the team's space
    DIRECT = "direct"  # an individual chat between two members
    SCIM_GROUP = "scim_group"  # a room in the space whose members an identity provider's group decides


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
    warnings_sent: str = ""  # labels of the trial warnings already sent, e.g. "7d,1d"
    redact: str | None = None  # the team's redaction mode; None: the operator's

    columns: ClassVar[str] = (
        "id, name, owner, space_id, state, plan, created_at, trial_ends_at, purge_after, "
        "retention_seconds, export_before_purge, warnings_sent, redact"
    )

    @property
    def space(self) -> str:
        """The team's space, for work on a created team (one being created may have none yet)."""
        if self.space_id is None:
            raise RuntimeError(f"team {self.id} has no space yet")
        return self.space_id

    @staticmethod
    def name_key(name: str) -> str:
        """Team names are unique regardless of case and surrounding space."""
        return " ".join(name.split()).casefold()

    @classmethod
    def _from_row(cls, row: Any) -> Team:
        return cls(**{**row, "export_before_purge": bool(row["export_before_purge"])})


@dataclass
class TeamRoom:
    """A room of a team: a group chat or an individual chat."""

    room_id: str
    team_id: str
    kind: str
    name: str
    created_at: int
    archived_at: int | None = None
    members: str | None = None  # the two participants of a direct chat, space-separated

    columns: ClassVar[str] = "room_id, team_id, kind, name, created_at, archived_at, members"


class CreationKind(StrEnum):
    SPACE = "space"
    ROOM = "room"
    LEGACY = "legacy"  # not one room: look once for orphans made before markers existed


@dataclass
class RoomCreation:
    """A space or room the bridge set out to create: its ``marker`` is in the room's creation
    content, and the row goes when the room is recorded as the team's (``TeamStore.set_space``,
    ``RoomStore.insert``). ``boot`` names the process, so a start knows which rows a stopped
    one left behind."""

    marker: str
    team_id: str | None
    kind: str
    boot: str
    started_at: int

    columns: ClassVar[str] = "marker, team_id, kind, boot, started_at"


class TeamStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, team: Team, owner: Member, *, created_by_event: str | None = None) -> None:
        """The team and its owner's membership, in one transaction (the name is unique).
        ``created_by_event``: the command event that asked for it (unique too), so running
        that command again finds this team."""
        async with transaction(self.db) as conn:
            await self._insert(conn, team)
            if created_by_event is not None:
                await conn.execute("UPDATE team SET created_by_event=$1 WHERE id=$2", created_by_event, team.id)
            await conn.execute(
                f"INSERT INTO team_member ({Member.columns}) VALUES ($1, $2, $3, $4, $5, $6)",
                owner.team_id,
                owner.user_id,
                owner.role,
                owner.membership,
                owner.created_by_bridge,
                owner.added_at,
            )

    @staticmethod
    async def _insert(conn: Connection, team: Team) -> None:
        await conn.execute(
            f"INSERT INTO team ({Team.columns}, name_key) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            team.id,
            team.name,
            team.owner,
            team.space_id,
            team.state,
            team.plan,
            team.created_at,
            team.trial_ends_at,
            team.purge_after,
            team.retention_seconds,
            team.export_before_purge,
            team.warnings_sent,
            team.redact,
            team.name_key(team.name),
        )

    async def _set(self, team_id: str, column: str, value: Any) -> None:
        # ``column`` is always one of the literals below, never input.
        await self.db.execute(f"UPDATE team SET {column}=$1 WHERE id=$2", value, team_id)

    async def set_space(self, team: Team, space_id: str, *, creation: str | None = None) -> None:
        """Record the team's space; with ``creation``, that creation is done (one transaction)."""
        async with transaction(self.db) as conn:
            await conn.execute("UPDATE team SET space_id=$1 WHERE id=$2", space_id, team.id)
            if creation is not None:
                await conn.execute("DELETE FROM room_creation WHERE marker=$1", creation)
        team.space_id = space_id

    async def set_state(self, team: Team, state: TeamState) -> None:
        team.state = state
        await self._set(team.id, "state", str(state))

    async def next_export_number(self, team_id: str) -> int:
        """The number of the team's next export: 1 for its first (counted in one statement, so two
        processes never get the same one)."""
        return await self.db.fetchval(
            "UPDATE team SET exports_made = exports_made + 1 WHERE id=$1 RETURNING exports_made", team_id
        )

    async def set_plan(self, team: Team, plan: str) -> None:
        team.plan = plan
        await self._set(team.id, "plan", plan)

    async def set_retention(self, team: Team, seconds: int) -> None:
        team.retention_seconds = seconds
        await self._set(team.id, "retention_seconds", seconds)

    async def set_redact(self, team: Team, mode: str) -> None:
        team.redact = mode
        await self._set(team.id, "redact", mode)

    async def set_export_before_purge(self, team: Team, enabled: bool) -> None:
        team.export_before_purge = enabled
        await self._set(team.id, "export_before_purge", enabled)

    async def set_warnings_sent(self, team: Team, labels: str) -> None:
        team.warnings_sent = labels
        await self._set(team.id, "warnings_sent", labels)

    async def rename(self, team: Team, name: str) -> None:
        team.name = name
        await self.db.execute("UPDATE team SET name=$1, name_key=$2 WHERE id=$3", name, Team.name_key(name), team.id)

    async def transfer(self, team: Team, new_owner: str) -> None:
        """The new owner takes the owner role; the old owner becomes an admin (one transaction)."""
        async with transaction(self.db) as conn:
            await conn.execute(
                "UPDATE team_member SET role='admin' WHERE team_id=$1 AND user_id=$2", team.id, team.owner
            )
            await conn.execute(
                "UPDATE team_member SET role='owner' WHERE team_id=$1 AND user_id=$2", team.id, new_owner
            )
            await conn.execute("UPDATE team SET owner=$1 WHERE id=$2", new_owner, team.id)
        team.owner = new_owner

    async def delete(self, team_id: str) -> None:
        await self.db.execute("DELETE FROM team WHERE id=$1", team_id)

    async def get(self, team_id: str) -> Team | None:
        row = await self.db.fetchrow(f"SELECT {Team.columns} FROM team WHERE id=$1", team_id)
        return Team._from_row(row) if row else None

    async def get_by_creating_event(self, event_id: str) -> Team | None:
        """The team that the command ``event_id`` created."""
        row = await self.db.fetchrow(f"SELECT {Team.columns} FROM team WHERE created_by_event=$1", event_id)
        return Team._from_row(row) if row else None

    async def get_by_name(self, name: str) -> Team | None:
        row = await self.db.fetchrow(f"SELECT {Team.columns} FROM team WHERE name_key=$1", Team.name_key(name))
        return Team._from_row(row) if row else None

    async def get_by_space(self, space_id: str) -> Team | None:
        row = await self.db.fetchrow(f"SELECT {Team.columns} FROM team WHERE space_id=$1", space_id)
        return Team._from_row(row) if row else None

    async def get_by_room(self, room_id: str) -> Team | None:
        """The team a room belongs to: its space or one of its rooms."""
        row = await self.db.fetchrow(
            f"SELECT {Team.columns} FROM team WHERE space_id=$1 OR id=(SELECT team_id FROM team_room WHERE room_id=$1)",
            room_id,
        )
        return Team._from_row(row) if row else None

    async def all(self) -> list[Team]:
        return [
            Team._from_row(row)
            for row in await self.db.fetch(f"SELECT {Team.columns} FROM team ORDER BY created_at, id")
        ]

    async def in_state(self, state: TeamState) -> list[Team]:
        rows = await self.db.fetch(f"SELECT {Team.columns} FROM team WHERE state=$1 ORDER BY created_at", str(state))
        return [Team._from_row(row) for row in rows]

    async def of_user(self, user_id: str) -> list[Team]:
        """Teams the user has a membership row in (any state of membership)."""
        columns = ", ".join("t." + c.strip() for c in Team.columns.split(","))
        rows = await self.db.fetch(
            f"SELECT {columns} FROM team t JOIN team_member m ON m.team_id = t.id WHERE m.user_id=$1 ORDER BY t.created_at",
            user_id,
        )
        return [Team._from_row(row) for row in rows]


class RoomStore:
    """The rooms of teams: every team room is known here (P1)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, room: TeamRoom, *, creation: str | None = None) -> None:
        """Record a team room; with ``creation``, that creation is done (one transaction)."""
        async with transaction(self.db) as conn:
            await conn.execute(
                f"INSERT INTO team_room ({TeamRoom.columns}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                room.room_id,
                room.team_id,
                room.kind,
                room.name,
                room.created_at,
                room.archived_at,
                room.members,
            )
            if creation is not None:
                await conn.execute("DELETE FROM room_creation WHERE marker=$1", creation)

    # --- rooms being created: what a crash between creating and recording leaves -------

    async def begin_creation(self, creation: RoomCreation) -> None:
        await self.db.execute(
            f"INSERT INTO room_creation ({RoomCreation.columns}) VALUES ($1, $2, $3, $4, $5)",
            creation.marker,
            creation.team_id,
            creation.kind,
            creation.boot,
            creation.started_at,
        )

    async def creations_left_by_others(self, boot: str) -> list[RoomCreation]:
        """Creations that processes other than ``boot`` began and never recorded."""
        rows = await self.db.fetch(
            f"SELECT {RoomCreation.columns} FROM room_creation WHERE boot<>$1 ORDER BY started_at, marker", boot
        )
        return [RoomCreation(**row) for row in rows]

    async def forget_creations(self, markers: list[str]) -> None:
        for marker in markers:
            await self.db.execute("DELETE FROM room_creation WHERE marker=$1", marker)

    async def known_room_ids(self) -> set[str]:
        """Every space and room of every team, archived ones too: the rooms that are not orphans."""
        rows = await self.db.fetch(
            "SELECT space_id AS room_id FROM team WHERE space_id IS NOT NULL UNION SELECT room_id FROM team_room"
        )
        return {row["room_id"] for row in rows}

    async def archive(self, room: TeamRoom, now_ms: int) -> None:
        room.archived_at = now_ms
        await self.db.execute("UPDATE team_room SET archived_at=$1 WHERE room_id=$2", now_ms, room.room_id)

    async def set_kind(self, room: TeamRoom, kind: RoomKind) -> None:
        room.kind = kind
        await self.db.execute("UPDATE team_room SET kind=$1 WHERE room_id=$2", kind, room.room_id)

    async def delete(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM team_room WHERE room_id=$1", room_id)

    async def get(self, room_id: str) -> TeamRoom | None:
        row = await self.db.fetchrow(f"SELECT {TeamRoom.columns} FROM team_room WHERE room_id=$1", room_id)
        return TeamRoom(**row) if row else None

    async def of_team(
        self, team_id: str, *, kind: RoomKind | None = None, include_archived: bool = False
    ) -> list[TeamRoom]:
        archived = "" if include_archived else " AND archived_at IS NULL"
        rows = await self.db.fetch(
            f"SELECT {TeamRoom.columns} FROM team_room WHERE team_id=$1{archived} ORDER BY created_at, name", team_id
        )
        return [TeamRoom(**row) for row in rows if kind is None or row["kind"] == kind]

    async def direct_between(self, team_id: str, members: str) -> TeamRoom | None:
        row = await self.db.fetchrow(
            f"SELECT {TeamRoom.columns} FROM team_room WHERE team_id=$1 AND kind='direct' AND members=$2 "
            "AND archived_at IS NULL",
            team_id,
            members,
        )
        return TeamRoom(**row) if row else None
