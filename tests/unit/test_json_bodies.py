"""Request bodies as JSON with bounded nesting: what is read, and how each refusal reads."""

from __future__ import annotations

import pytest

from clutto_bridge.json_bodies import MAX_DEPTH, RefusedJson, parse_json


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"name": "Acme"}', {"name": "Acme"}),
        (b"[1, 2]", [1, 2]),
        (b"null", None),
        (nested(MAX_DEPTH), eval(nested(MAX_DEPTH).decode())),
        ('{"name": "Équipe ☕"}'.encode(), {"name": "Équipe ☕"}),
    ],
)
def test_json_within_the_bounds_is_read(raw: bytes, value) -> None:
    assert parse_json(raw) == value


@pytest.mark.parametrize(
    ("raw", "errcode", "words"),
    [
        (nested(MAX_DEPTH + 1), "M_BAD_JSON", "nests deeper than 64 levels"),
        (b'{"a": ' + nested(MAX_DEPTH) + b"}", "M_BAD_JSON", "nests deeper than 64 levels"),
        (nested(900), "M_BAD_JSON", "nests deeper"),
        (nested(1000), "M_BAD_JSON", "nests deeper"),  # RecursionError in the parser itself
        (nested(200_000), "M_BAD_JSON", "nests deeper"),
        (b"{not json", "M_NOT_JSON", "not valid JSON"),
        (b"", "M_NOT_JSON", "not valid JSON"),
        (b'{"a": "\xff\xfe"}', "M_NOT_JSON", "not UTF-8"),
    ],
)
def test_other_bodies_are_refused_with_one_sentence(raw: bytes, errcode: str, words: str) -> None:
    with pytest.raises(RefusedJson) as refused:
        parse_json(raw)
    assert refused.value.errcode == errcode
    assert words in refused.value.message
