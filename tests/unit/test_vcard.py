"""vCard import keeps a name, emails and Matrix IDs, and refuses what it cannot read."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.contacts import MAX_BYTES, Contact, VCardError, merge_contacts, parse_vcards

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
    assert ada.card() == {"name": "Ada Lovelace", "emails": ["ada@example.org"], "matrix_ids": ["@ada:example.org"]}
    assert charles.card() == {"name": "Charles Babbage", "emails": [], "matrix_ids": []}


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


def _card(name: str, emails: list[str] = (), ids: list[str] = ()) -> Contact:
    return Contact(name, list(emails), list(ids))


def test_a_reimported_file_adds_nobody_twice() -> None:
    known = parse_vcards(CARDS)
    merge = merge_contacts(known, parse_vcards(CARDS))
    assert merge.added == [] and merge.repeated == 2 and merge.touched == [0, 1]
    assert merge.contacts == known


@pytest.mark.parametrize(
    ("known", "incoming", "kept", "repeated"),
    [
        # The same email (any case) or the same Matrix ID is the same person; new addresses are added.
        (
            [_card("Ada", ["ada@example.org"])],
            [_card("Ada L.", ["ADA@example.org", "ada@work.example"])],
            [_card("Ada", ["ada@example.org", "ada@work.example"])],
            1,
        ),
        (
            [_card("Ada", [], ["@ada:example.org"])],
            [_card("", ["ada@example.org"], ["@ada:example.org"])],
            [_card("Ada", ["ada@example.org"], ["@ada:example.org"])],
            1,
        ),
        # Two cards of one file for the same person are kept once.
        (
            [],
            [_card("Bob", ["bob@example.org"]), _card("Robert", ["bob@example.org"])],
            [_card("Bob", ["bob@example.org"])],
            1,
        ),
        # Without an email or Matrix ID, a card is known by its name only.
        (
            [_card("Charles Babbage")],
            [_card("charles babbage"), _card("Charles", ["c@example.org"])],
            [_card("Charles Babbage"), _card("Charles", ["c@example.org"])],
            1,
        ),
        # Different people with the same name stay apart.
        (
            [_card("Sam", ["sam@a.example"])],
            [_card("Sam", ["sam@b.example"])],
            [_card("Sam", ["sam@a.example"]), _card("Sam", ["sam@b.example"])],
            0,
        ),
    ],
)
def test_cards_sharing_an_address_are_one_contact(known, incoming, kept, repeated) -> None:
    merge = merge_contacts(known, incoming)
    assert (merge.contacts, merge.repeated) == (kept, repeated)
    assert merge.added == kept[len(known) :]
