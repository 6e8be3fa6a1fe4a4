"""Contact import: the member's permission and the kept part of their imported cards, each
card encrypted (P12) and bound to its row id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.connection import transaction
from clutto_bridge.db.encrypted import BY_NAME

_CARD = BY_NAME["contact.card"]


@dataclass
class StoredContact:
    card: dict[str, Any]  # name, emails, Matrix IDs: the kept part of the vCard
    matched: str | None  # the homeserver account it was matched to
    imported_at: int
    id: int | None = None  # None until stored


class ContactStore:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    def _seal(self, contact_id: int, card: dict[str, Any]) -> str:
        return self.cipher.encrypt(_CARD.place(contact_id), json.dumps(card))

    async def permitted(self, user_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM contact_permission WHERE user_id=$1", user_id) is not None

    async def grant(self, user_id: str, now_ms: int) -> None:
        await self.db.execute("INSERT INTO contact_permission (user_id, granted_at) VALUES ($1, $2)", user_id, now_ms)

    async def revoke(self, user_id: str) -> int:
        """Withdraw the permission and delete every imported contact in one transaction; return how many."""
        async with transaction(self.db) as conn:
            deleted = await conn.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", user_id)
            await conn.execute("DELETE FROM contact WHERE owner=$1", user_id)
            await conn.execute("DELETE FROM contact_permission WHERE user_id=$1", user_id)
        return deleted

    async def save(self, owner: str, added: list[StoredContact], changed: list[StoredContact]) -> None:
        """Add new contacts and rewrite changed ones (with their ``id``) in one transaction."""
        async with transaction(self.db) as conn:
            for c in changed:
                assert c.id is not None, "a changed contact is one read from the store"
                await conn.execute(
                    "UPDATE contact SET card=$3, matched=$4 WHERE owner=$1 AND id=$2",
                    owner,
                    c.id,
                    self._seal(c.id, c.card),
                    c.matched,
                )
            for c in added:
                # The row id is part of the card's associated data, so the row comes first.
                c.id = await conn.fetchval(
                    "INSERT INTO contact (owner, card, matched, imported_at) VALUES ($1, '', $2, $3) RETURNING id",
                    owner,
                    c.matched,
                    c.imported_at,
                )
                await conn.execute("UPDATE contact SET card=$1 WHERE id=$2", self._seal(c.id, c.card), c.id)

    async def of_owner(self, owner: str) -> list[StoredContact]:
        rows = await self.db.fetch(
            "SELECT id, card, matched, imported_at FROM contact WHERE owner=$1 ORDER BY id", owner
        )
        return [
            StoredContact(
                json.loads(self.cipher.decrypt(_CARD.place(r["id"]), r["card"])),
                r["matched"],
                r["imported_at"],
                r["id"],
            )
            for r in rows
        ]
