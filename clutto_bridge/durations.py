"""Durations as operators and members write them in config and commands: ``90d``, ``12h``,
``1d12h``, ``3mo``.

``m`` is minutes, as in ``30m``; a month is ``mo`` (30 days), so ``1m`` never silently
means a month. Where a value in minutes is refused, ``minutes_hint`` says so.
"""

from __future__ import annotations

import re

MONTH = 30 * 86400
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "mo": MONTH, "m": 60, "s": 1}
# "mo" before "m": the longest unit that matches.
_PART = re.compile(r"(\d+)(mo|[wdhms])")
_WHOLE = re.compile(r"(?:\d+(?:mo|[wdhms]))+")


class DurationError(ValueError):
    """A duration that cannot be read; the message says how to write one."""


def parse_duration(text: object) -> int:
    """Return the duration in seconds, or raise DurationError with a readable reason."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise DurationError(f"expected a duration like 90d, 12h or 30m, got {text!r}")
    value = str(text).strip().lower()
    if not _WHOLE.fullmatch(value):
        raise DurationError(
            f"{text!r} is not a duration: write a number with a unit "
            "(s, m for minutes, h, d, w or mo for months of 30 days), for example 90d, 12h, 30m, 3mo or 1d12h"
        )
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))


def minutes_hint(text: object) -> str:
    """For a refused value written in minutes (``1m``): the sentence saying that ``m`` means
    minutes, and how to write months; empty for any other value."""
    parts = _PART.findall(str(text).strip().lower()) if isinstance(text, str) else []
    minutes = [n for n, unit in parts if unit == "m"]
    if not minutes:
        return ""
    return f"`m` means minutes; for months write `mo`, for example `{minutes[0]}mo`."


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration, for replies and config defaults (in days,
    hours, minutes and seconds: ``30d`` rather than ``1mo``, which a reader might take for a
    calendar month)."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
