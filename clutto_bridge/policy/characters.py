"""Which characters a name may hold: visible text, joiners only where Unicode uses them.

Names (of teams, rooms, profile fields) are shown to other people, so characters that are
invisible or change how the text around them is shown are refused: controls, bidi
overrides and isolates (U+202A-202E, U+2066-2069), zero-width spaces, private-use and
unassigned code points. The two joiners are the exception, where Unicode gives them a
job inside one grapheme cluster:

- U+200D ZERO WIDTH JOINER between two emoji (an emoji ZWJ sequence such as 👩‍💻; the
  first may carry a skin tone or a variation selector, UAX #29 rule GB11);
- U+200C ZERO WIDTH NON-JOINER and U+200D between letters of a script that uses them
  (Arabic and Persian, Syriac, Mongolian, the Indic scripts), for example the Persian
  ``می‌خواهم`` or the Devanagari ``क्‍ष``.

The flag tag sequences (🏴 followed by tag letters and U+E007F, as for England) are
standard emoji too and are allowed in that form only.
"""

from __future__ import annotations

import bisect
import unicodedata
from dataclasses import dataclass

ZWNJ = "\u200c"
ZWJ = "\u200d"
_BLACK_FLAG = 0x1F3F4
_TAG_CANCEL = 0xE007F
_TAG_SPEC = set(range(0xE0030, 0xE003A)) | set(range(0xE0061, 0xE007B))  # tag digits and small letters
_SKIN_TONES = range(0x1F3FB, 0x1F400)

# Extended_Pictographic (emoji-data.txt, Unicode 15), first and last code point of each run.
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
)
_PICTOGRAPHIC_STARTS = [first for first, _ in _PICTOGRAPHIC]

# Scripts whose writing uses ZWNJ/ZWJ between letters, by block.
_JOINING_SCRIPTS = (
    ("Arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0x0870, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    ("Syriac", ((0x0700, 0x074F), (0x0860, 0x086F))),
    ("Devanagari", ((0x0900, 0x097F), (0xA8E0, 0xA8FF))),
    ("Bengali", ((0x0980, 0x09FF),)),
    ("Gurmukhi", ((0x0A00, 0x0A7F),)),
    ("Gujarati", ((0x0A80, 0x0AFF),)),
    ("Oriya", ((0x0B00, 0x0B7F),)),
    ("Tamil", ((0x0B80, 0x0BFF),)),
    ("Telugu", ((0x0C00, 0x0C7F),)),
    ("Kannada", ((0x0C80, 0x0CFF),)),
    ("Malayalam", ((0x0D00, 0x0D7F),)),
    ("Sinhala", ((0x0D80, 0x0DFF),)),
    ("Mongolian", ((0x1800, 0x18AF),)),
)


@dataclass(frozen=True)
class RefusedCharacter:
    """A character a name may not hold, and where it is (1-based, in code points)."""

    char: str
    position: int

    def describe(self) -> str:
        code = ord(self.char)
        name = unicodedata.name(self.char, None) or _unnamed(self.char)
        text = f"U+{code:04X} {name} at position {self.position}"
        if self.char in (ZWJ, ZWNJ):
            text += " (a joiner belongs only inside an emoji sequence or between letters of a script that uses it)"
        return text


def _unnamed(char: str) -> str:
    category = unicodedata.category(char)
    return {"Cc": "(a control character)", "Co": "(a private-use character)", "Cs": "(a surrogate)"}.get(
        category, "(an unassigned code point)"
    )


def pictographic(char: str) -> bool:
    code = ord(char)
    i = bisect.bisect_right(_PICTOGRAPHIC_STARTS, code) - 1
    return i >= 0 and code <= _PICTOGRAPHIC[i][1]


def joining_script(char: str) -> str | None:
    code = ord(char)
    for script, blocks in _JOINING_SCRIPTS:
        if any(first <= code <= last for first, last in blocks):
            return script
    return None


def _extends(char: str) -> bool:
    """Characters that attach to the one before them (marks, skin tones, variation selectors)."""
    return unicodedata.category(char) in ("Mn", "Me", "Mc") or ord(char) in _SKIN_TONES


def _base_before(text: str, i: int) -> str | None:
    """The character the one at ``i`` attaches to, skipping the marks in between."""
    j = i - 1
    while j >= 0 and _extends(text[j]):
        j -= 1
    return text[j] if j >= 0 else None


def _joiner_allowed(text: str, i: int) -> bool:
    before = _base_before(text, i)
    after = text[i + 1] if i + 1 < len(text) else None
    if before is None or after is None:
        return False
    if text[i] == ZWJ and pictographic(before) and pictographic(after):
        return True
    script = joining_script(before)
    return (
        script is not None
        and unicodedata.category(before).startswith("L")
        and joining_script(after) == script
        and unicodedata.category(after)[0] in "LM"
    )


def _tag_run(text: str, i: int) -> int:
    """The length of a flag tag sequence starting at ``i`` (after 🏴), or 0 if there is none."""
    if i == 0 or ord(text[i - 1]) != _BLACK_FLAG:
        return 0
    j = i
    while j < len(text) and ord(text[j]) in _TAG_SPEC:
        j += 1
    if j == i or j >= len(text) or ord(text[j]) != _TAG_CANCEL:
        return 0
    return j + 1 - i


def refused_character(text: str) -> RefusedCharacter | None:
    """The first character of ``text`` a name may not hold, or None when all are fine."""
    i = 0
    while i < len(text):
        char = text[i]
        if unicodedata.category(char).startswith("C"):
            if char in (ZWJ, ZWNJ) and _joiner_allowed(text, i):
                i += 1
                continue
            run = _tag_run(text, i)
            if run:
                i += run
                continue
            return RefusedCharacter(char, i + 1)
        i += 1
    return None
