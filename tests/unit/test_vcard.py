"""vCard import keeps a name, emails and Matrix IDs, and refuses what it cannot read."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.contacts import MAX_BYTES, VCardError, parse_vcards

CARDS = b"""BEGIN:VCARD
VERSION:3.0
FN:Ada Lovelace
EMAIL;TYPE=work:Ada@Example.org
TEL:+44 20 1234
ADR:;;12 St James's Square;London;;;UK
IMPP:matrix:u/ada:example.org
END:VCARD
BEGIN:VCARD
VERSION:4.0
N:Babbage;Charles;;;
EMAIL:not-an-email
END:VCARD
"""


def test_only_name_email_and_matrix_id_are_kept() -> None:
    ada, charles = parse_vcards(CARDS)
    assert ada.to_json() == {"name": "Ada Lovelace", "emails": ["ada@example.org"], "matrix_ids": ["@ada:example.org"]}
    assert charles.to_json() == {"name": "Charles Babbage", "emails": [], "matrix_ids": []}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello", "no vCard"),
        (b"BEGIN:VCARD\nFN:Ada\n", "malformed"),
        (b"\xff\xfe", "not UTF-8"),
        (b"BEGIN:VCALENDAR\nX-NOTE:BEGIN:VCARD\nEND:VCALENDAR\n", "VCALENDAR, not only vCards"),
        (b"BEGIN:VCARD\nVERSION:3.0\nTEL:123\nEND:VCARD\n", "neither a name"),
        (b"x" * (MAX_BYTES + 1), "at most"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(VCardError, match=message):
        parse_vcards(data)
