"""Accounts the bridge created on the homeserver. The password is never stored; the email is
the only contact detail kept (plaintext until field encryption lands)."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database


@dataclass
class Account:
    user_id: str
    email: str | None
    created_at: int


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, account: Account) -> None:
        await self.db.execute(
            "INSERT INTO account (user_id, email, created_at) VALUES ($1, $2, $3)",
            account.user_id, account.email, account.created_at,
        )

    async def get(self, user_id: str) -> Account | None:
        row = await self.db.fetchrow("SELECT user_id, email, created_at FROM account WHERE user_id=$1", user_id)
        return Account(**row) if row else None
