"""Accounts the bridge created on the homeserver. The password is never stored; the email is
the only contact detail kept, encrypted (P3, P12), with a keyed HMAC of it for lookups."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.encrypted import BY_NAME, EMAIL_INDEX

_EMAIL = BY_NAME["account.email"]


@dataclass
class Account:
    user_id: str
    email: str | None
    created_at: int


class AccountStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    async def add(self, account: Account) -> None:
        email = account.email
        await self.db.execute(
            "INSERT INTO account (user_id, email, email_index, created_at) VALUES ($1, $2, $3, $4)",
            account.user_id,
            self.cipher.encrypt(_EMAIL.place(account.user_id), email),
            self.cipher.index(EMAIL_INDEX, email) if email else None,
            account.created_at,
        )

    async def set_email(self, user_id: str, email: str | None) -> None:
        """A new email for an account the bridge created (its identity provider changed it)."""
        await self.db.execute(
            "UPDATE account SET email=$2, email_index=$3 WHERE user_id=$1",
            user_id,
            self.cipher.encrypt(_EMAIL.place(user_id), email),
            self.cipher.index(EMAIL_INDEX, email) if email else None,
        )

    async def get(self, user_id: str) -> Account | None:
        row = await self.db.fetchrow("SELECT user_id, email, created_at FROM account WHERE user_id=$1", user_id)
        if not row:
            return None
        return Account(row["user_id"], self.cipher.decrypt(_EMAIL.place(user_id), row["email"]), row["created_at"])

    async def user_of_email(self, email: str) -> str | None:
        """The account the bridge created with this email (any case), found by its index."""
        return await self.db.fetchval(
            "SELECT user_id FROM account WHERE email_index=$1 ORDER BY created_at LIMIT 1",
            self.cipher.index(EMAIL_INDEX, email),
        )
