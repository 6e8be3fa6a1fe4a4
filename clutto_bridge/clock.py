"""The bridge's notion of now, passed in explicitly so tests can move time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class ManualClock:
    """A clock that moves only when told: for tests and for drills of the trial lifecycle."""

    def __init__(self, start_ms: int | None = None) -> None:
        self.now = int(time.time() * 1000) if start_ms is None else start_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def utc_minute(ms: int) -> str:
    """A time the bridge records (ms since the epoch) as the chat and the portal write it:
    ``2026-12-06 14:03 UTC``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
