"""Durations as operators write them in config and commands: ``90d``, ``12h``, ``1d12h``."""

from __future__ import annotations

import re

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")


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
            "(s, m, h, d or w), for example 90d, 12h, 30m or 1d12h"
        )
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration, for replies and config defaults."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
