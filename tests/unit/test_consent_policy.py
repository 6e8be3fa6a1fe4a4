"""Policy texts and consent: parsing versioned files, which acceptance covers the current version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from clutto_bridge.policy import consent
from clutto_bridge.policy_files import PACKAGED_TEXTS, read_texts


def text(version: str, day: int, reconsent: bool) -> consent.PolicyText:
    return consent.PolicyText(version, dt.date(2026, 1, day), reconsent, "s", "t")


TEXTS = {t.version: t for t in (text("1", 1, True), text("1.1", 2, False), text("2", 3, True), text("2.1", 4, False))}


def test_acceptance_counts_since_the_last_version_that_asks_for_it() -> None:
    assert consent.required_version(TEXTS, "1.1") == "1"
    assert consent.required_version(TEXTS, "2.1") == "2"
    assert consent.has_consented(TEXTS, "1.1", ["1"])
    assert not consent.has_consented(TEXTS, "2", ["1", "1.1"])
    assert consent.has_consented(TEXTS, "2.1", ["2"])
    assert consent.has_consented(TEXTS, "2.1", ["2.1"])
    assert not consent.has_consented(TEXTS, "2.1", [])
    assert not consent.has_consented(TEXTS, "2.1", ["unknown"])


def test_shipped_placeholder_policy_parses() -> None:
    texts = read_texts(PACKAGED_TEXTS)
    assert texts and all(t.summary and t.text for t in texts.values())


@pytest.mark.parametrize(
    "raw, message",
    [
        ("no front matter", "must start with a front matter"),
        ("---\npublished: 2026-01-01\n", "not closed"),
        ("---\nsummary: x\n---\ntext", "published: YYYY-MM-DD"),
        ("---\npublished: 2026-01-01\n---\ntext", "needs a 'summary'"),
        ("---\npublished: 2026-01-01\nsummary: s\nreconsent: maybe\n---\ntext", "'reconsent' must be true or false"),
        ("---\npublished: 2026-01-01\nsummary: s\nurl: http://x\n---\ntext", "https://"),
        ("---\npublished: 2026-01-01\nsummary: s\n---\n  \n", "policy text after the front matter is empty"),
        ("---\n[unclosed\n---\ntext", "not valid YAML"),
    ],
)
def test_bad_policy_files_name_the_problem(tmp_path: Path, raw: str, message: str) -> None:
    (tmp_path / "3.md").write_text(raw)
    with pytest.raises(ValueError, match=message) as caught:
        read_texts(tmp_path)
    assert str(caught.value).startswith("3.md: ")


def test_version_names_are_file_names(tmp_path: Path) -> None:
    (tmp_path / "bad name.md").write_text("---\npublished: 2026-01-01\nsummary: s\n---\ntext")
    with pytest.raises(ValueError, match="may use letters, digits"):
        read_texts(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        read_texts(tmp_path / "nope")
