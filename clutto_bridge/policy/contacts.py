"""What an imported contact keeps (P6): a name, email addresses and Matrix IDs, nothing else.

vCards carry phone numbers, addresses, birthdays and notes; none of that is needed to find
a colleague on the homeserver, so none of it is kept. Parsing uses vobject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import vobject
from vobject.base import ParseError

from clutto_bridge.policy.ids import USER_ID

MAX_BYTES = 1024 * 1024
MAX_CARDS = 5000
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class VCardError(ValueError):
    """The upload is not a usable vCard file; the message says why."""


@dataclass
class Contact:
    name: str
    emails: list[str] = field(default_factory=list)
    matrix_ids: list[str] = field(default_factory=list)

    def card(self) -> dict[str, Any]:
        """The card as the contact store keeps it (the API's shape is ``web.outputs.Contact``)."""
        return {"name": self.name, "emails": self.emails, "matrix_ids": self.matrix_ids}

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Contact:
        return cls(card.get("name", ""), list(card.get("emails", [])), list(card.get("matrix_ids", [])))

    def keys(self) -> set[str]:
        """What makes two cards the same person: a shared email address or Matrix ID. A card
        with neither is known only by its name."""
        keys = {f"email:{e.casefold()}" for e in self.emails} | {f"mxid:{m.casefold()}" for m in self.matrix_ids}
        return keys or {f"name:{self.name.casefold()}"}

    def merged(self, other: Contact) -> Contact:
        """This card with the addresses ``other`` adds; the name kept, or taken when missing."""
        emails, matrix_ids = _union(self.emails, other.emails), _union(self.matrix_ids, other.matrix_ids)
        return Contact(self.name or other.name, emails, matrix_ids)


def _union(mine: list[str], theirs: list[str]) -> list[str]:
    seen = {v.casefold() for v in mine}
    added = []
    for value in theirs:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            added.append(value)
    return mine + added


@dataclass
class ContactMerge:
    contacts: list[Contact]
    """The contacts kept before, some with addresses added, then the new ones."""
    touched: list[int]
    """Indexes into ``contacts`` of those the file names, in the order it names them first."""
    known: int
    """How many contacts were kept before (``contacts[:known]``)."""
    repeated: int
    """Cards of the file that were already kept, or repeated a card earlier in the file."""

    @property
    def added(self) -> list[Contact]:
        return self.contacts[self.known :]


def merge_contacts(known: list[Contact], incoming: list[Contact]) -> ContactMerge:
    """Fold the cards of a file into the contacts already kept, so a re-import adds nobody twice.

    A card that shares an email address or a Matrix ID with a kept contact (or, having
    neither, its name) is that contact: its other addresses are added to it.
    """
    contacts = list(known)
    index: dict[str, int] = {}
    for i, contact in enumerate(contacts):
        for key in contact.keys():
            index.setdefault(key, i)
    touched: list[int] = []
    repeated = 0
    for card in incoming:
        hit = next((index[k] for k in sorted(card.keys()) if k in index), None)
        if hit is None:
            contacts.append(card)
            hit = len(contacts) - 1
        else:
            repeated += 1
            contacts[hit] = contacts[hit].merged(card)
        for key in contacts[hit].keys():
            index.setdefault(key, hit)
        if hit not in touched:
            touched.append(hit)
    return ContactMerge(contacts, touched, len(known), repeated)


def _matrix_id(uri: str) -> str | None:
    """``matrix:u/alice:example.com`` (RFC-style URI), ``xmpp``-like ``matrix:@alice:...`` or a bare ID."""
    uri = unquote(uri.strip())
    if uri.startswith("matrix:u/"):
        candidate = "@" + uri[len("matrix:u/") :].split("?")[0]
    elif uri.startswith("matrix:"):
        candidate = uri[len("matrix:") :]
    else:
        candidate = uri
    return candidate if USER_ID.fullmatch(candidate) else None


def parse_vcards(data: bytes) -> list[Contact]:
    if len(data) > MAX_BYTES:
        raise VCardError(f"The file has {len(data):,} bytes; at most {MAX_BYTES:,} are accepted.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise VCardError("The file is not UTF-8 text; export the contacts as vCard (.vcf).") from None
    if "BEGIN:VCARD" not in text.upper():
        raise VCardError("The file holds no vCard (no BEGIN:VCARD line).")
    contacts: list[Contact] = []
    try:
        for component in vobject.readComponents(text, validate=False):
            if component.name.upper() != "VCARD":
                raise VCardError(f"The file holds a {component.name}, not only vCards.")
            contacts.append(_contact(component))
            if len(contacts) > MAX_CARDS:
                raise VCardError(f"The file holds more than {MAX_CARDS:,} contacts.")
    except ParseError as e:
        raise VCardError(f"The vCard file is malformed: {e}.") from None
    if not contacts:
        raise VCardError("The file holds no contacts.")
    return contacts


def _contact(card: Any) -> Contact:  # a vobject vCard component
    name = ""
    if hasattr(card, "fn"):
        name = str(card.fn.value)
    elif hasattr(card, "n"):
        n = card.n.value
        name = " ".join(str(p) for p in (getattr(n, "given", ""), getattr(n, "family", "")) if p)
    contact = Contact(" ".join(name.split())[:200])
    for line in card.getChildren():
        value = line.value if isinstance(line.value, str) else ""
        if line.name == "EMAIL" and _EMAIL.fullmatch(value.strip()):
            contact.emails.append(value.strip().lower())
        elif line.name in ("IMPP", "X-MATRIX", "URL"):
            mxid = _matrix_id(value)
            if mxid:
                contact.matrix_ids.append(mxid)
    if not contact.name and not contact.emails and not contact.matrix_ids:
        raise VCardError("A vCard has neither a name, an email address nor a Matrix ID.")
    return contact
