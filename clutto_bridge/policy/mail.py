"""Email, headers only (P16): which part of a message a team sees, decided without I/O.

A message arrives as bytes. Only its header block (everything before the first empty line)
is parsed; the body and the attachments are never looked at. Of the headers, only the
allowlisted ones are kept, decoded (RFC 2047 encoded words, 8-bit UTF-8), put on one line
(a CR or LF in a value cannot start a new line or a new header) and cut to a length. The
notice shows them as plain text: its HTML is escaped, so markup in a header is text.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

# The longest team-name part of an address (before the random part).
_SLUG_LENGTH = 24
_SPACES = re.compile(r"\s+")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_LOCAL_PART = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
NOTE = "headers only: the body and attachments were not kept"


@dataclass(frozen=True)
class ShownHeader:
    name: str  # as the operator wrote it in email.headers
    value: str  # decoded, one line, length-limited


def address_local_part(team_name: str, token: str) -> str:
    """A team's address before the ``@``: its name in letters and digits, then a random part
    (``token``, lower-case hex), so an address cannot be guessed from the team's name."""
    slug = _NOT_SLUG.sub("-", unicodedata.normalize("NFKD", team_name).encode("ascii", "ignore").decode().lower())
    slug = slug.strip("-")[:_SLUG_LENGTH].strip("-") or "team"
    return f"{slug}-{token}"


def recipient_local_part(address: str, domain: str) -> str | None:
    """The local part of ``address`` when it is at the mail domain and could be a team's; else None."""
    address = address.strip().removeprefix("<").removesuffix(">")
    local, at, host = address.rpartition("@")
    if not at or host.casefold() != domain.casefold():
        return None
    local = local.casefold()
    return local if _LOCAL_PART.fullmatch(local) else None


def header_block(message: bytes) -> bytes:
    """The bytes before the first empty line: the headers. The rest is not returned, so the
    caller can drop the body without it ever reaching a parser."""
    ends = [i for i in (message.find(b"\r\n\r\n"), message.find(b"\n\n")) if i >= 0]
    return message[: min(ends)] + b"\r\n" if ends else message


def one_line(value: str, max_length: int) -> str:
    """A header value as one line of text: control characters (CR, LF, NUL, ...) and line
    separators become spaces, runs of space one space, and it is cut to ``max_length``."""
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value)
    cleaned = _SPACES.sub(" ", cleaned).strip()
    return cleaned if len(cleaned) <= max_length else cleaned[: max_length - 1].rstrip() + "…"


def _decoded(raw: str) -> str:
    """A header value with its encoded words decoded; 8-bit bytes read as UTF-8."""
    try:
        value = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        value = raw
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def shown_headers(headers: bytes, allowlist: tuple[str, ...], max_length: int) -> list[ShownHeader]:
    """The allowlisted headers of a header block, in the allowlist's order (the first of a
    repeated header), each decoded and on one line. Any other header is dropped."""
    parsed = BytesHeaderParser(policy=default_policy.clone(raise_on_defect=False)).parsebytes(headers)
    raw: dict[str, str] = {}
    for name, value in parsed.raw_items():
        raw.setdefault(name.casefold(), value)
    shown = []
    for name in allowlist:
        value = raw.get(name.casefold())
        if value is not None:
            text = one_line(_decoded(value), max_length)
            if text:
                shown.append(ShownHeader(name, text))
    return shown


def notice(address: str, headers: list[ShownHeader]) -> tuple[str, str]:
    """The notice in a team's email room: (plain body, HTML body). Every header value is
    text: escaped in the HTML, never rendered as Markdown or markup."""
    lead = f"Email to {address} ({NOTE})"
    lines = [f"{h.name}: {h.value}" for h in headers] or ["(none of the shown headers was present)"]
    plain = "\n".join([lead, *lines])
    rows = [f"<b>{html.escape(h.name)}:</b> {html.escape(h.value)}" for h in headers] or [
        "<i>(none of the shown headers was present)</i>"
    ]
    formatted = f"<p><b>Email</b> to <code>{html.escape(address)}</code> <i>({NOTE})</i></p><p>{'<br/>'.join(rows)}</p>"
    return plain, formatted
