"""Which characters a name may hold: joiners where Unicode uses them, nothing else invisible."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.characters import pictographic, refused_character

ZWJ, ZWNJ = "\u200d", "\u200c"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Developer 👩\u200d💻", id="woman technologist (ZWJ sequence)"),
        pytest.param("👨\u200d👩\u200d👧\u200d👦 Family", id="family of four"),
        pytest.param("Ops 👩🏽\u200d🚒", id="skin tone before the joiner"),
        pytest.param("❤\ufe0f\u200d🔥 Team", id="variation selector before the joiner"),
        pytest.param("🏳\ufe0f\u200d🌈 Pride", id="rainbow flag"),
        pytest.param(
            "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f Squad", id="flag of England (tags)"
        ),
        pytest.param("می\u200cخواهم", id="Persian ZWNJ between letters"),
        pytest.param("\u0645\u064e\u200c\u0631", id="Arabic ZWNJ after a letter with a mark"),
        pytest.param("क्\u200dष", id="Devanagari ZWJ after virama"),
        pytest.param("क्\u200cष", id="Devanagari ZWNJ after virama"),
        pytest.param("ന്\u200dമ", id="Malayalam ZWJ"),
        pytest.param("ශ්\u200dරී", id="Sinhala ZWJ (rakaransaya)"),
        pytest.param("Équipe ☕ 1️⃣", id="plain emoji and keycap"),
        pytest.param("Acme", id="ascii"),
    ],
)
def test_standard_names_are_accepted(name: str) -> None:
    assert refused_character(name) is None


@pytest.mark.parametrize(
    "name, described",
    [
        ("Acme\u202eevil", "U+202E RIGHT-TO-LEFT OVERRIDE at position 5"),
        ("\u202aAcme", "U+202A LEFT-TO-RIGHT EMBEDDING at position 1"),
        ("Ac\u2066me", "U+2066 LEFT-TO-RIGHT ISOLATE at position 3"),
        ("Acme\u2069", "U+2069 POP DIRECTIONAL ISOLATE at position 5"),
        ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE at position 5"),
        ("word\u2060joiner", "U+2060 WORD JOINER at position 5"),
        ("bom\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE at position 4"),
        ("soft\u00adhyphen", "U+00AD SOFT HYPHEN at position 5"),
        ("tab\u0007bell", "U+0007 (a control character) at position 4"),
        ("private\ue000", "U+E000 (a private-use character) at position 8"),
        ("\u061cArabic mark", "U+061C ARABIC LETTER MARK at position 1"),
        # Joiners outside the places Unicode gives them.
        ("Ac" + ZWJ + "me", "U+200D ZERO WIDTH JOINER at position 3"),
        ("Ac" + ZWNJ + "me", "U+200C ZERO WIDTH NON-JOINER at position 3"),
        (ZWJ + "👩", "U+200D ZERO WIDTH JOINER at position 1"),
        ("👩" + ZWJ, "U+200D ZERO WIDTH JOINER at position 2"),
        ("👩" + ZWJ + "a", "U+200D ZERO WIDTH JOINER at position 2"),
        ("a" + ZWJ + "💻", "U+200D ZERO WIDTH JOINER at position 2"),
        ("👩" + ZWNJ + "💻", "U+200C ZERO WIDTH NON-JOINER at position 2"),
        ("می" + ZWNJ + " خواهم", "U+200C ZERO WIDTH NON-JOINER at position 3"),
        ("क" + ZWJ + "م", "U+200D ZERO WIDTH JOINER at position 2"),  # scripts differ
        ("\u0645" + ZWNJ + ZWNJ + "\u0631", "U+200C ZERO WIDTH NON-JOINER at position 2"),
        # Tag characters only as a flag tag sequence after the black flag.
        ("Acme\U000e0067\U000e007f", "U+E0067 TAG LATIN SMALL LETTER G at position 5"),
        ("🏴\U000e0067\U000e0062", "U+E0067 TAG LATIN SMALL LETTER G at position 2"),
        ("🏴\U000e0041\U000e007f", "U+E0041 TAG LATIN CAPITAL LETTER A at position 2"),
    ],
)
def test_invisible_and_misplaced_characters_are_named_with_their_position(name: str, described: str) -> None:
    refused = refused_character(name)
    assert refused is not None and refused.describe().startswith(described)


def test_a_misplaced_joiner_says_where_joiners_belong() -> None:
    assert "emoji sequence or between letters" in refused_character("Ac\u200dme").describe()
    assert "belong" not in refused_character("Acme\u202e").describe()


@pytest.mark.parametrize(
    "char, expected",
    [("👩", True), ("💻", True), ("©", True), ("☕", True), ("a", False), ("\U0001f3fb", False), ("\u0645", False)],
)
def test_pictographic(char: str, expected: bool) -> None:
    assert pictographic(char) is expected
