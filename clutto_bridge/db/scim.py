"""SCIM provisioning: the teams' bearer tokens (as hashes) and the users an identity provider
provisioned. ``user_name`` and ``external_id`` are encrypted (P12); the user name also has a
keyed HMAC for lookups. Nothing else a provider sends is stored here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.encrypted import BY_NAME, SCIM_USER_NAME_INDEX

_USER_NAME = BY_NAME["scim_user.user_name"]
_EXTERNAL_ID = BY_NAME["scim_user.external_id"]


@dataclass
class ScimToken:
    id: str
    team_id: str
    name: str
    secret_hash: str
    created_by: str | None
    created_at: int
    last_used_at: int | None = None
    revoked_at: int | None = None

    columns: ClassVar[str] = "id, team_id, name, secret_hash, created_by, created_at, last_used_at, revoked_at"


@dataclass
class ScimUser:
    id: str
    team_id: str
    user_id: str
    user_name: str
    external_id: str | None
    active: bool | None  # None: the provider never said; the person counts as active
    version: int
    created_at: int
    updated_at: int


@dataclass
class ScimGroup:
    """A group the provider manages as a room of the team's space (its name is the room's)."""

    id: str
    team_id: str
    room_id: str
    version: int
    created_at: int
    updated_at: int

    columns: ClassVar[str] = "id, team_id, room_id, version, created_at, updated_at"


class ScimStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    # --- tokens --------------------------------------------------------------------

    async def add_token(self, token: ScimToken) -> None:
        await self.db.execute(
            f"INSERT INTO scim_token ({ScimToken.columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            token.id,
            token.team_id,
            token.name,
            token.secret_hash,
            token.created_by,
            token.created_at,
            token.last_used_at,
            token.revoked_at,
        )

    async def token(self, token_id: str) -> ScimToken | None:
        row = await self.db.fetchrow(f"SELECT {ScimToken.columns} FROM scim_token WHERE id=$1", token_id)
        return ScimToken(**row) if row else None

    async def tokens_of(self, team_id: str) -> list[ScimToken]:
        rows = await self.db.fetch(
            f"SELECT {ScimToken.columns} FROM scim_token WHERE team_id=$1 ORDER BY created_at, id", team_id
        )
        return [ScimToken(**r) for r in rows]

    async def revoke(self, token_id: str, now_ms: int) -> None:
        await self.db.execute(
            "UPDATE scim_token SET revoked_at=$2 WHERE id=$1 AND revoked_at IS NULL", token_id, now_ms
        )

    async def used(self, token_id: str, now_ms: int) -> None:
        await self.db.execute("UPDATE scim_token SET last_used_at=$2 WHERE id=$1", token_id, now_ms)

    # --- users ---------------------------------------------------------------------

    def _user(self, row: Any) -> ScimUser | None:
        if not row:
            return None
        return ScimUser(
            row["id"],
            row["team_id"],
            row["user_id"],
            self.cipher.decrypt(_USER_NAME.place(row["id"]), row["user_name"]),
            self.cipher.decrypt(_EXTERNAL_ID.place(row["id"]), row["external_id"]),
            None if row["active"] is None else bool(row["active"]),
            row["version"],
            row["created_at"],
            row["updated_at"],
        )

    _COLUMNS = "id, team_id, user_id, user_name, external_id, active, version, created_at, updated_at"

    async def add_user(self, user: ScimUser) -> None:
        await self.db.execute(
            "INSERT INTO scim_user (id, team_id, user_id, user_name, user_name_index, external_id, active, version, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            user.id,
            user.team_id,
            user.user_id,
            self.cipher.encrypt(_USER_NAME.place(user.id), user.user_name),
            self.cipher.index(SCIM_USER_NAME_INDEX, user.user_name),
            self.cipher.encrypt(_EXTERNAL_ID.place(user.id), user.external_id),
            user.active,
            user.version,
            user.created_at,
            user.updated_at,
        )

    async def save_user(self, user: ScimUser) -> None:
        await self.db.execute(
            "UPDATE scim_user SET user_name=$2, user_name_index=$3, external_id=$4, active=$5, version=$6, "
            "updated_at=$7 WHERE id=$1",
            user.id,
            self.cipher.encrypt(_USER_NAME.place(user.id), user.user_name),
            self.cipher.index(SCIM_USER_NAME_INDEX, user.user_name),
            self.cipher.encrypt(_EXTERNAL_ID.place(user.id), user.external_id),
            user.active,
            user.version,
            user.updated_at,
        )

    async def delete_user(self, scim_id: str) -> None:
        await self.db.execute("DELETE FROM scim_group_member WHERE user_id=$1", scim_id)
        await self.db.execute("DELETE FROM scim_user WHERE id=$1", scim_id)

    async def user(self, team_id: str, scim_id: str) -> ScimUser | None:
        return self._user(
            await self.db.fetchrow(
                f"SELECT {self._COLUMNS} FROM scim_user WHERE team_id=$1 AND id=$2",
                team_id,
                scim_id,
            )
        )

    async def user_by_matrix_id(self, team_id: str, user_id: str) -> ScimUser | None:
        return self._user(
            await self.db.fetchrow(
                f"SELECT {self._COLUMNS} FROM scim_user WHERE team_id=$1 AND user_id=$2",
                team_id,
                user_id,
            )
        )

    async def user_by_name(self, team_id: str, user_name: str) -> ScimUser | None:
        """By userName in any case (RFC 7643: userName is not case-exact)."""
        return self._user(
            await self.db.fetchrow(
                f"SELECT {self._COLUMNS} FROM scim_user WHERE team_id=$1 AND user_name_index=$2",
                team_id,
                self.cipher.index(SCIM_USER_NAME_INDEX, user_name),
            )
        )

    async def users_of(self, team_id: str) -> list[ScimUser]:
        rows = await self.db.fetch(
            f"SELECT {self._COLUMNS} FROM scim_user WHERE team_id=$1 ORDER BY created_at, id", team_id
        )
        return [user for r in rows if (user := self._user(r)) is not None]

    # --- groups that are rooms -------------------------------------------------------

    async def add_group(self, group: ScimGroup) -> None:
        await self.db.execute(
            f"INSERT INTO scim_group ({ScimGroup.columns}) VALUES ($1, $2, $3, $4, $5, $6)",
            group.id,
            group.team_id,
            group.room_id,
            group.version,
            group.created_at,
            group.updated_at,
        )

    async def group(self, team_id: str, group_id: str) -> ScimGroup | None:
        row = await self.db.fetchrow(
            f"SELECT {ScimGroup.columns} FROM scim_group WHERE team_id=$1 AND id=$2", team_id, group_id
        )
        return ScimGroup(**row) if row else None

    async def groups_of(self, team_id: str) -> list[ScimGroup]:
        rows = await self.db.fetch(
            f"SELECT {ScimGroup.columns} FROM scim_group WHERE team_id=$1 ORDER BY created_at, id", team_id
        )
        return [ScimGroup(**r) for r in rows]

    async def touch_group(self, group: ScimGroup, now_ms: int) -> None:
        group.version += 1
        group.updated_at = now_ms
        await self.db.execute(
            "UPDATE scim_group SET version=$2, updated_at=$3 WHERE id=$1", group.id, group.version, now_ms
        )

    async def delete_group(self, group_id: str) -> None:
        await self.db.execute("DELETE FROM scim_group_member WHERE group_id=$1", group_id)
        await self.db.execute("DELETE FROM scim_group WHERE id=$1", group_id)

    async def group_members(self, group_id: str) -> set[str]:
        """The SCIM ids of the group's users."""
        rows = await self.db.fetch("SELECT user_id FROM scim_group_member WHERE group_id=$1", group_id)
        return {r["user_id"] for r in rows}

    async def add_group_member(self, group_id: str, scim_id: str) -> None:
        await self.db.execute("INSERT INTO scim_group_member (group_id, user_id) VALUES ($1, $2)", group_id, scim_id)

    async def remove_group_member(self, group_id: str, scim_id: str) -> None:
        await self.db.execute("DELETE FROM scim_group_member WHERE group_id=$1 AND user_id=$2", group_id, scim_id)

    async def groups_of_user(self, scim_id: str) -> list[str]:
        """The ids of the room groups a provisioned user is in."""
        rows = await self.db.fetch("SELECT group_id FROM scim_group_member WHERE user_id=$1 ORDER BY group_id", scim_id)
        return [r["group_id"] for r in rows]
