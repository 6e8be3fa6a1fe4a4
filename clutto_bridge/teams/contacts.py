"""Contact import with permission (P6).

Nothing is imported before the member allowed it (``contacts allow``); revoking deletes
every imported contact at once. Imported cards are matched to accounts on the homeserver
(by Matrix ID, or by email through the admin API) and the matches are offered as people
to invite; nobody is invited automatically.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.policy.contacts import Contact, VCardError, parse_vcards
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.errors import Conflict, InvalidInput, NotAllowed

log = logging.getLogger("clutto.contacts")


@dataclass
class ImportReport:
    imported: int
    matched: list[str]

    def to_json(self) -> dict:
        return {"imported": self.imported, "matched": self.matched}


class ContactService:
    def __init__(self, consent: ConsentService, admin: SynapseAdmin) -> None:
        self.consent = consent
        self.admin = admin
        self.db = consent.db
        self.clock = consent.clock
        self.domain = consent.settings.homeserver.domain

    async def permitted(self, user_id: str) -> bool:
        return await self.db.fetchval("SELECT 1 FROM contact_permission WHERE user_id=$1", user_id) is not None

    async def allow(self, user_id: str) -> None:
        if await self.permitted(user_id):
            raise Conflict("You already allowed contact import. `contacts revoke` withdraws it.")
        await self.db.execute(
            "INSERT INTO contact_permission (user_id, granted_at) VALUES ($1, $2)", user_id, self.clock.now_ms()
        )
        await self.consent.record_choice(user_id, "contact_import", "allowed")

    async def revoke(self, user_id: str) -> int:
        """Withdraw the permission and delete every imported contact; return how many."""
        if not await self.permitted(user_id):
            raise Conflict("Contact import is not allowed, so there is nothing to revoke.")
        async with self.db.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", user_id)
            await conn.execute("DELETE FROM contact WHERE owner=$1", user_id)
            await conn.execute("DELETE FROM contact_permission WHERE user_id=$1", user_id)
        await self.consent.record_choice(user_id, "contact_import", "revoked")
        log.info("%s revoked contact import; %d contact(s) deleted", user_id, deleted)
        return deleted

    async def import_vcards(self, user_id: str, data: bytes) -> ImportReport:
        if not await self.permitted(user_id):
            raise NotAllowed("Contact import needs your permission first: send `contacts allow`.")
        try:
            contacts = parse_vcards(data)
        except VCardError as e:
            raise InvalidInput(str(e)) from None
        rows = []
        matched: list[str] = []
        for contact in contacts:
            found = await self._match(contact)
            if found == user_id:
                found = None
            if found and found not in matched:
                matched.append(found)
            rows.append((user_id, json.dumps(contact.to_json()), found, self.clock.now_ms()))
        async with self.db.acquire() as conn, conn.transaction():
            for row in rows:
                await conn.execute(
                    "INSERT INTO contact (owner, card, matched, imported_at) VALUES ($1, $2, $3, $4)", *row
                )
        log.info("%s imported %d contact(s), %d on this homeserver", user_id, len(rows), len(matched))
        return ImportReport(len(rows), matched)

    async def _match(self, contact: Contact) -> str | None:
        for mxid in contact.matrix_ids:
            if mxid.endswith(f":{self.domain}"):
                try:
                    if await self.admin.account_exists(mxid):
                        return mxid
                except AdminUnavailable:
                    return None
        for email in contact.emails:
            try:
                found = await self.admin.user_of_email(email)
            except AdminUnavailable:
                return None
            if found:
                return found
        return None

    async def list(self, user_id: str) -> list[dict]:
        rows = await self.db.fetch(
            "SELECT card, matched, imported_at FROM contact WHERE owner=$1 ORDER BY id", user_id
        )
        return [{**json.loads(r["card"]), "matched": r["matched"], "imported_at": r["imported_at"]} for r in rows]
