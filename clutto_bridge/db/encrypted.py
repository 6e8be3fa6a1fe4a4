"""The encrypted columns (P12) and the work over all of them: re-encryption under the primary
key after a rotation, counting rows per key, encrypting rows an older version wrote in plaintext.

A value is bound to its row by the row key named here (associated data), so the stores and
these walks must agree on it: this list is the one place it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher, Place
from clutto_bridge.crypto.cipher import PREFIX, key_prefix


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    column: str
    row_key: str  # unique: binds the value to its row and orders the batches

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def place(self, row_key: Any) -> Place:
        return Place(self.table, self.column, str(row_key))


ENCRYPTED = (
    EncryptedColumn("account", "email", "user_id"),
    EncryptedColumn("profile", "first_name", "user_id"),
    EncryptedColumn("profile", "last_name", "user_id"),
    EncryptedColumn("profile", "designation", "user_id"),
    EncryptedColumn("profile", "photo", "user_id"),
    EncryptedColumn("contact", "card", "id"),
    EncryptedColumn("inbox_event", "event", "event_id"),
    EncryptedColumn("scim_user", "user_name", "id"),
    EncryptedColumn("scim_user", "external_id", "id"),
)
BY_NAME = {c.name: c for c in ENCRYPTED}
# The columns upgrade v12 found in plaintext and encrypted: the tables of later versions (scim_user,
# v22) do not exist yet when it runs, and were always written encrypted.
BEFORE_V12 = tuple(c for c in ENCRYPTED if c.table in ("account", "profile", "contact", "inbox_event"))
# The lookup index of account emails (a keyed HMAC; see FieldCipher.index).
EMAIL_INDEX = "email"
# The lookup index of the userName an identity provider gave a member (SCIM).
SCIM_USER_NAME_INDEX = "scim_user_name"


async def _rows_after(conn: Any, col: EncryptedColumn, after: Any, limit: int, where: str = "") -> list[Any]:
    cond = f"{col.column} IS NOT NULL" + (f" AND {where}" if where else "")
    if after is None:
        return await conn.fetch(
            f"SELECT {col.row_key} AS k, {col.column} AS v FROM {col.table} WHERE {cond} "
            f"ORDER BY {col.row_key} LIMIT $1",
            limit,
        )
    return await conn.fetch(
        f"SELECT {col.row_key} AS k, {col.column} AS v FROM {col.table} WHERE {col.row_key} > $1 AND {cond} "
        f"ORDER BY {col.row_key} LIMIT $2",
        after,
        limit,
    )


async def _replace(conn: Any, col: EncryptedColumn, key: Any, old: str, new: str) -> bool:
    """Compare and set: a value the bridge rewrote meanwhile is left as it is (it is new anyway)."""
    done = await conn.fetchval(
        f"UPDATE {col.table} SET {col.column}=$1 WHERE {col.row_key}=$2 AND {col.column}=$3 RETURNING 1",
        new,
        key,
        old,
    )
    return done is not None


async def encrypt_plaintext(conn: Any, cipher: FieldCipher, batch: int = 500) -> int:
    """Encrypt every value an older version stored in plaintext (upgrade v12); return how many."""
    done = 0
    for col in BEFORE_V12:
        after = None
        while rows := await _rows_after(conn, col, after, batch, f"{col.column} NOT LIKE '{PREFIX}%'"):
            for row in rows:
                await _replace(conn, col, row["k"], row["v"], cipher.encrypt(col.place(row["k"]), row["v"]))
                if col.name == "account.email":
                    await set_email_index(conn, cipher, row["k"], row["v"])
                done += 1
            after = rows[-1]["k"]
    return done


async def set_email_index(conn: Any, cipher: FieldCipher, user_id: str, email: str | None) -> None:
    index = cipher.index(EMAIL_INDEX, email) if email else None
    await conn.execute("UPDATE account SET email_index=$1 WHERE user_id=$2", index, user_id)


async def plaintext_rows(conn: Any) -> int:
    total = 0
    for col in BEFORE_V12:
        total += await conn.fetchval(
            f"SELECT COUNT(*) FROM {col.table} WHERE {col.column} IS NOT NULL AND {col.column} NOT LIKE '{PREFIX}%'"
        )
    return total


@dataclass
class Batch:
    last_key: Any  # None when the column is done
    seen: int
    rewrapped: int


class EncryptedColumns:
    """Rotation's view of the encrypted columns: what each key protects, and re-encryption."""

    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    async def count_by_key(self) -> dict[int | None, int]:
        """Values per key id over every encrypted column; None counts values no key of the
        keyset names (plaintext, or a key already removed from the file)."""
        counts: dict[int | None, int] = {}
        for col in ENCRYPTED:
            total = await self.db.fetchval(f"SELECT COUNT(*) FROM {col.table} WHERE {col.column} IS NOT NULL")
            known = 0
            for key in self.cipher.keyset.keys:
                n = await self.db.fetchval(
                    f"SELECT COUNT(*) FROM {col.table} WHERE {col.column} LIKE $1", key_prefix(key.id) + "%"
                )
                counts[key.id] = counts.get(key.id, 0) + n
                known += n
            if total - known:
                counts[None] = counts.get(None, 0) + total - known
        return counts

    async def check_opens(self) -> None:
        """Decrypt one stored value of each encrypted column: a keyset that is not the one the
        data was written with fails here, at start-up, rather than on some member's request.
        Raises ``DecryptionError`` naming the column."""
        for col in ENCRYPTED:
            row = await self.db.fetchrow(
                f"SELECT {col.row_key} AS k, {col.column} AS v FROM {col.table} WHERE {col.column} IS NOT NULL LIMIT 1"
            )
            if row:
                self.cipher.decrypt(col.place(row["k"]), row["v"])

    async def rows_under(self, key_id: int) -> int:
        total = 0
        for col in ENCRYPTED:
            total += await self.db.fetchval(
                f"SELECT COUNT(*) FROM {col.table} WHERE {col.column} LIKE $1", key_prefix(key_id) + "%"
            )
        return total

    async def rewrap_batch(self, column: str, after: Any, limit: int) -> Batch:
        """Re-encrypt under the primary key the next ``limit`` values of a column after ``after``."""
        col = BY_NAME[column]
        rows = await _rows_after(self.db, col, after, limit)
        rewrapped = 0
        for row in rows:
            new = self.cipher.rewrap(col.place(row["k"]), row["v"])
            if new is not None and await _replace(self.db, col, row["k"], row["v"], new):
                rewrapped += 1
        return Batch(rows[-1]["k"] if len(rows) == limit else None, len(rows), rewrapped)
