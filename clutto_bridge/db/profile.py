"""Members' profiles: one per user, shared by all their teams. Every field is encrypted (P12)."""

from __future__ import annotations

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.encrypted import BY_NAME

# The columns of the profile table that hold a field; also what ``policy.profile.FIELDS`` names.
FIELD_COLUMNS = ("first_name", "last_name", "designation", "photo")
_COLUMNS = {f: BY_NAME[f"profile.{f}"] for f in FIELD_COLUMNS}


class ProfileStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    async def get(self, user_id: str) -> dict[str, str | None]:
        row = await self.db.fetchrow(
            "SELECT first_name, last_name, designation, photo FROM profile WHERE user_id=$1", user_id
        )
        return {f: (self.cipher.decrypt(_COLUMNS[f].place(user_id), row[f]) if row else None) for f in FIELD_COLUMNS}

    async def save(self, user_id: str, profile: dict[str, str | None], now_ms: int) -> None:
        sealed = {f: self.cipher.encrypt(_COLUMNS[f].place(user_id), profile[f]) for f in FIELD_COLUMNS}
        await self.db.execute(
            "INSERT INTO profile (user_id, first_name, last_name, designation, photo, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET first_name=excluded.first_name, "
            "last_name=excluded.last_name, designation=excluded.designation, photo=excluded.photo, "
            "updated_at=excluded.updated_at",
            user_id,
            sealed["first_name"],
            sealed["last_name"],
            sealed["designation"],
            sealed["photo"],
            now_ms,
        )

    async def clear_field(self, field: str) -> int:
        """Forget one field of every profile; return how many values there were."""
        if field not in FIELD_COLUMNS:
            raise ValueError(f"no profile field {field!r}")
        count = await self.db.fetchval(f"SELECT COUNT(*) FROM profile WHERE {field} IS NOT NULL")
        if count:
            await self.db.execute(f"UPDATE profile SET {field}=NULL WHERE {field} IS NOT NULL")
        return count

    async def reminded_at(self, user_id: str) -> int | None:
        return await self.db.fetchval("SELECT reminded_at FROM profile WHERE user_id=$1", user_id)

    async def set_reminded(self, user_id: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO profile (user_id, updated_at, reminded_at) VALUES ($1, $2, $2) "
            "ON CONFLICT (user_id) DO UPDATE SET reminded_at=excluded.reminded_at",
            user_id,
            now_ms,
        )
