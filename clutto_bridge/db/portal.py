"""The privacy portal's records: one-time sign-in links, server-side sessions, cookie choices.

Links and sessions are looked up by the SHA-256 hash of their secret; the secret itself is
only ever in the member's chat (the link) or browser (the session cookie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mautrix.util.async_db import Database


@dataclass
class SignInLink:
    token_hash: str
    user_id: str
    created_at: int
    expires_at: int
    used_at: int | None

    columns: ClassVar[str] = "token_hash, user_id, created_at, expires_at, used_at"

    @classmethod
    def _from_row(cls, row: Any) -> SignInLink | None:
        return cls(**row) if row else None


@dataclass
class CookieChoiceRow:
    user_id: str
    categories: str
    policy_version: str
    ts: int


class PortalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_link(self, link: SignInLink) -> None:
        await self.db.execute(
            f"INSERT INTO portal_link ({SignInLink.columns}) VALUES ($1, $2, $3, $4, $5)",
            link.token_hash,
            link.user_id,
            link.created_at,
            link.expires_at,
            link.used_at,
        )

    async def links_since(self, user_id: str, since_ms: int) -> int:
        return await self.db.fetchval(
            "SELECT COUNT(*) FROM portal_link WHERE user_id=$1 AND created_at >= $2", user_id, since_ms
        )

    async def use_link(self, token_hash: str, now_ms: int) -> SignInLink | None:
        """Mark the link used, in one statement, and return it: only the first use gets it."""
        row = await self.db.fetchrow(
            f"UPDATE portal_link SET used_at=$2 WHERE token_hash=$1 AND used_at IS NULL AND expires_at > $2 "
            f"RETURNING {SignInLink.columns}",
            token_hash,
            now_ms,
        )
        return SignInLink._from_row(row)

    async def link(self, token_hash: str) -> SignInLink | None:
        row = await self.db.fetchrow(f"SELECT {SignInLink.columns} FROM portal_link WHERE token_hash=$1", token_hash)
        return SignInLink._from_row(row)

    async def forget_links_before(self, before_ms: int) -> None:
        await self.db.execute("DELETE FROM portal_link WHERE expires_at < $1", before_ms)

    async def session(self, id_hash: str, now_ms: int) -> str | None:
        return await self.db.fetchval(
            "SELECT data FROM portal_session WHERE id_hash=$1 AND expires_at > $2", id_hash, now_ms
        )

    async def save_session(self, id_hash: str, user_id: str | None, data: str, expires_at: int) -> None:
        await self.db.execute(
            "INSERT INTO portal_session (id_hash, user_id, data, expires_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id_hash) DO UPDATE SET user_id=excluded.user_id, data=excluded.data, "
            "expires_at=excluded.expires_at",
            id_hash,
            user_id,
            data,
            expires_at,
        )

    async def end_session(self, id_hash: str) -> None:
        await self.db.execute("DELETE FROM portal_session WHERE id_hash=$1", id_hash)

    async def forget_sessions_before(self, before_ms: int) -> None:
        await self.db.execute("DELETE FROM portal_session WHERE expires_at < $1", before_ms)

    async def record_cookie_choice(self, row: CookieChoiceRow) -> None:
        await self.db.execute(
            "INSERT INTO cookie_choice (user_id, categories, policy_version, ts) VALUES ($1, $2, $3, $4)",
            row.user_id,
            row.categories,
            row.policy_version,
            row.ts,
        )

    async def cookie_choices(self, user_id: str) -> list[CookieChoiceRow]:
        """Every choice of the user, oldest first; the last one is in force."""
        rows = await self.db.fetch(
            "SELECT user_id, categories, policy_version, ts FROM cookie_choice WHERE user_id=$1 ORDER BY id", user_id
        )
        return [CookieChoiceRow(**r) for r in rows]
