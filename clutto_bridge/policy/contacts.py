"""What an imported contact keeps (P6): a name, email addresses and Matrix IDs, nothing else.

vCards carry phone numbers, addresses, birthdays and notes; none of that is needed to find
a colleague on the homeserver, so none of it is kept. Parsing uses vobject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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

    def to_json(self) -> dict:
        return {"name": self.name, "emails": self.emails, "matrix_ids": self.matrix_ids}


def _matrix_id(uri: str) -> str | None:
    """``matrix:u/alice:example.com`` (RFC-style URI), ``xmpp``-like ``matrix:@alice:...`` or a bare ID."""
    uri = unquote(uri.strip())
    if uri.startswith("matrix:u/"):
        candidate = "@" + uri[len("matrix:u/"):].split("?")[0]
    elif uri.startswith("matrix:"):
        candidate = uri[len("matrix:"):]
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


def _contact(card) -> Contact:
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
