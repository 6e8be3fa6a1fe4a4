"""Contact import with permission (P6).

Nothing is imported before the member allowed it (``contacts allow``); revoking deletes
every imported contact at once. Imported cards are matched to accounts on the homeserver
(by Matrix ID, or by email through the admin API) and the matches are offered as people
to invite; nobody is invited automatically.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.db.contacts import ContactStore, StoredContact
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
    def __init__(self, store: ContactStore, consent: ConsentService, admin: SynapseAdmin, domain: str, clock: Clock) -> None:
        self.store = store
        self.consent = consent
        self.admin = admin
        self.domain = domain
        self.clock = clock

    async def permitted(self, user_id: str) -> bool:
        return await self.store.permitted(user_id)

    async def allow(self, user_id: str) -> None:
        if await self.permitted(user_id):
            raise Conflict("You already allowed contact import. `contacts revoke` withdraws it.")
        await self.store.grant(user_id, self.clock.now_ms())
        await self.consent.record_choice(user_id, "contact_import", "allowed")

    async def revoke(self, user_id: str) -> int:
        """Withdraw the permission and delete every imported contact; return how many."""
        if not await self.permitted(user_id):
            raise Conflict("Contact import is not allowed, so there is nothing to revoke.")
        deleted = await self.store.revoke(user_id)
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
        kept: list[StoredContact] = []
        matched: list[str] = []
        for contact in contacts:
            found = await self._match(contact)
            if found == user_id:
                found = None
            if found and found not in matched:
                matched.append(found)
            kept.append(StoredContact(contact.to_json(), found, self.clock.now_ms()))
        await self.store.add(user_id, kept)
        log.info("%s imported %d contact(s), %d on this homeserver", user_id, len(kept), len(matched))
        return ImportReport(len(kept), matched)

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
        return [{**c.card, "matched": c.matched, "imported_at": c.imported_at} for c in await self.store.of_owner(user_id)]
