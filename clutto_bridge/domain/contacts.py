"""Contact import with permission (P6).

Nothing is imported before the member allowed it (``contacts allow``); revoking deletes
every imported contact at once. Imported cards are matched to accounts on the homeserver
(by Matrix ID, or by email through the admin API) and the matches are offered as people
to invite; nobody is invited automatically. A re-imported card is the contact already kept
when it shares an email address or Matrix ID with it, so nobody is kept twice.

A file sent in the chat with the bot holds more than is kept (phone numbers, addresses,
notes), so after reading it (decrypted, when it came as an encrypted attachment) the bot
redacts its message and deletes its media from the homeserver, whether the import succeeded
or was refused (``sent_files``).

Refusals say what is missing, not how to fix it: the chat names a command, the API an
endpoint, so each entry point adds its own way (``ImportNotAllowed``, ``AlreadyAllowed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.db.account import AccountStore
from clutto_bridge.db.contacts import ContactStore, StoredContact
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotAllowed
from clutto_bridge.domain.sent_files import FileRemoval, SentFile, read_sent_file, remove_sent_file
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.contacts import MAX_BYTES, Contact, VCardError, merge_contacts, parse_vcards

log = logging.getLogger("clutto.contacts")


class ImportNotAllowed(NotAllowed):
    """Contact import without the member's permission."""

    def __init__(self) -> None:
        super().__init__("Contact import needs your permission first.")


class AlreadyAllowed(Conflict):
    def __init__(self) -> None:
        super().__init__("You already allowed contact import.")


@dataclass
class ImportReport:
    imported: int
    """Contacts new to the member's list."""
    matched: list[str]
    already_known: int = 0
    """Cards of the file that were already imported (or repeated in the file): kept once."""


@dataclass(kw_only=True, eq=False, repr=False)
class ContactService:
    store: ContactStore
    accounts: AccountStore
    consent: ConsentService
    admin: SynapseAdmin
    domain: str
    clock: Clock
    homeserver: Homeserver
    audit: AuditLog

    async def permitted(self, user_id: str) -> bool:
        return await self.store.permitted(user_id)

    async def allow(self, user_id: str) -> None:
        if await self.permitted(user_id):
            raise AlreadyAllowed()
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
            raise ImportNotAllowed()
        try:
            contacts = parse_vcards(data)
        except VCardError as e:
            raise InvalidInput(str(e)) from None
        stored = await self.store.of_owner(user_id)
        merge = merge_contacts([Contact.from_card(c.card) for c in stored], contacts)
        added: list[StoredContact] = []
        changed: list[StoredContact] = []
        matched: list[str] = []
        now = self.clock.now_ms()
        for i in merge.touched:
            contact = merge.contacts[i]
            found = await self._match(contact)
            if found == user_id:
                found = None
            if found and found not in matched:
                matched.append(found)
            if i >= merge.known:
                added.append(StoredContact(contact.card(), found, now))
            elif contact.card() != stored[i].card or found != stored[i].matched:
                changed.append(StoredContact(contact.card(), found, stored[i].imported_at, stored[i].id))
        await self.store.save(user_id, added, changed)
        if matched:
            # Telling the member which of their contacts have an account here discloses those accounts.
            await self.audit.record(None, user_id, AuditAction.CONTACTS_MATCHED, user_id, matched=matched)
        log.info(
            "%s imported %d new contact(s) (%d already kept), %d on this homeserver",
            user_id,
            len(added),
            merge.repeated,
            len(matched),
        )
        return ImportReport(len(added), matched, merge.repeated)

    async def read_file(self, source: SentFile | None) -> bytes:
        """The content of a file sent in a chat (decrypted when it came encrypted), refused
        beyond the size a vCard file may have."""
        return await read_sent_file(self.homeserver, source, "file", MAX_BYTES)

    async def remove_file(self, room_id: str, event_id: str, source: SentFile | None) -> FileRemoval:
        """Redact the file's message and delete its media (P6: only the kept part may stay)."""
        return await remove_sent_file(
            self.homeserver,
            self.admin,
            room_id,
            event_id,
            source,
            "Contact file: only names, emails and Matrix IDs are kept",
        )

    async def _match(self, contact: Contact) -> str | None:
        for mxid in contact.matrix_ids:
            if mxid.endswith(f":{self.domain}"):
                try:
                    if await self.admin.account_exists(mxid):
                        return mxid
                except AdminUnavailable:
                    return None
        for email in contact.emails:
            # Accounts the bridge created are found by the keyed index of their email,
            # without asking the homeserver.
            mine = await self.accounts.user_of_email(email)
            if mine:
                return mine
            try:
                found = await self.admin.user_of_email(email)
            except AdminUnavailable:
                return None
            if found:
                return found
        return None

    async def list(self, user_id: str) -> list[dict]:
        return [
            {**c.card, "matched": c.matched, "imported_at": c.imported_at} for c in await self.store.of_owner(user_id)
        ]
