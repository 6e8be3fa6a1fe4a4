"""Retention decisions: which lifetime applies, where the cutoff lies, what a sweep removes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clutto_bridge.durations import format_duration


class RetentionOutOfBounds(ValueError):
    pass


@dataclass(frozen=True)
class RetentionBounds:
    min: int
    max: int
    default: int

    def check(self, seconds: int) -> int:
        if not self.min <= seconds <= self.max:
            raise RetentionOutOfBounds(
                f"{format_duration(seconds)} is outside what the operator allows: "
                f"from {format_duration(self.min)} to {format_duration(self.max)}."
            )
        return seconds

    def effective(self, team_choice: int | None) -> int:
        """The team's own choice, else the default; an old choice outside new bounds is clamped."""
        if team_choice is None:
            return self.default
        return min(max(team_choice, self.min), self.max)


def cutoff(now_ms: int, lifetime_seconds: int) -> int:
    """Events with an origin_server_ts before this are past the team's retention."""
    return now_ms - lifetime_seconds * 1000


def removable(event: dict[str, Any], cutoff_ms: int) -> bool:
    """A sweep removes message-like events older than the cutoff that are not yet redacted.

    State events stay: they define the room (membership, power levels) and Synapse keeps
    them when purging history anyway.
    """
    if "state_key" in event or event.get("type") == "m.room.redaction":
        return False
    if "redacted_because" in (event.get("unsigned") or {}):
        return False
    return event.get("origin_server_ts", cutoff_ms) < cutoff_ms


class PurgePlan:
    """Where to cut a room's history, decided while reading it oldest first.

    Purging removes everything topologically before an event, so the cut may only follow
    events that are past the cutoff (or state, which Synapse keeps). The plan closes at
    the first newer message; old events after it are redacted but not purged, so the
    window is never touched even when event order and timestamps disagree. Along the way
    it places a cut whenever ``slice_ms`` of history has passed, so each purge is bounded.
    """

    def __init__(self, cutoff_ms: int, slice_ms: int, points: list[str] | None = None,
                 slice_start: int | None = None, closed: bool = False) -> None:
        self.cutoff_ms = cutoff_ms
        self.slice_ms = slice_ms
        self.points = points or []
        self.slice_start = slice_start
        self.closed = closed

    def see(self, event: dict[str, Any]) -> None:
        if self.closed or "state_key" in event:
            return
        ts = event.get("origin_server_ts", self.cutoff_ms)
        if ts >= self.cutoff_ms:
            if self.slice_start is not None:  # something old lies before: cut here
                self.points.append(event["event_id"])
            self.closed = True
            return
        if self.slice_start is None:
            self.slice_start = ts
        elif ts - self.slice_start >= self.slice_ms:
            self.points.append(event["event_id"])
            self.slice_start = ts

    def state(self) -> dict[str, Any]:
        return {"points": self.points, "slice_start": self.slice_start, "closed": self.closed}


def media_urls(content: dict[str, Any]) -> set[str]:
    """The mxc:// URLs an event's content refers to (file, image, thumbnail, encrypted file)."""
    found = set()
    for value in (
        content.get("url"),
        (content.get("file") or {}).get("url") if isinstance(content.get("file"), dict) else None,
        (content.get("info") or {}).get("thumbnail_url") if isinstance(content.get("info"), dict) else None,
    ):
        if isinstance(value, str) and value.startswith("mxc://"):
            found.add(value)
    return found
