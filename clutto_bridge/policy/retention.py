"""Retention decisions: which lifetime applies, where the cutoff lies, what a sweep removes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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
    return bool(event.get("origin_server_ts", cutoff_ms) < cutoff_ms)


class PurgePlan:
    """Where to cut a room's history, decided while reading it oldest first.

    Purging removes everything topologically before an event, so the cut may only follow
    events that are past the cutoff (or state, which Synapse keeps). The plan closes at
    the first newer message; old events after it are redacted but not purged, so the
    window is never touched even when event order and timestamps disagree. Along the way
    it places a cut whenever ``slice_ms`` of history has passed, so each purge is bounded.
    """

    def __init__(
        self,
        cutoff_ms: int,
        slice_ms: int,
        points: list[str] | None = None,
        slice_start: int | None = None,
        closed: bool = False,
    ) -> None:
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


class RedactMode(StrEnum):
    """When a sweep redacts expired events besides purging them (``policy.retention.redact``).

    Redaction makes members' clients and other homeservers drop the content; a purge removes
    it from this homeserver's database only, at a fraction of the cost.
    """

    NEVER = "never"  # purge only
    AUTO = "auto"  # redact where other homeservers hold copies, purge only elsewhere
    ALWAYS = "always"  # redact everywhere, then purge


REDACT_MODES = tuple(m.value for m in RedactMode)
_STRENGTH = {RedactMode.NEVER: 0, RedactMode.AUTO: 1, RedactMode.ALWAYS: 2}


class RedactModeNotAllowed(ValueError):
    pass


def team_redact_mode(operator: RedactMode, choice: str) -> RedactMode:
    """A team may redact more than the operator's setting, never less."""
    try:
        mode = RedactMode(choice.strip().lower())
    except ValueError:
        raise RedactModeNotAllowed(f"{choice!r} is not a redaction mode: choose auto, always or never.") from None
    if _STRENGTH[mode] < _STRENGTH[operator]:
        allowed = ", ".join(m.value for m in RedactMode if _STRENGTH[m] >= _STRENGTH[operator])
        raise RedactModeNotAllowed(f"The operator requires at least `{operator}` here; allowed: {allowed}.")
    return mode


def effective_redact_mode(operator: RedactMode, team_choice: str | None) -> RedactMode:
    """The team's choice when it still lies within the operator's setting, else the operator's."""
    if team_choice is None:
        return operator
    try:
        return team_redact_mode(operator, team_choice)
    except RedactModeNotAllowed:
        return operator


@dataclass(frozen=True)
class RoomPath:
    """How a sweep removes a room's expired events."""

    redact_reachable: bool  # redact what the purge removes anyway (copies elsewhere must go)
    redact_unreachable: bool  # redact what a purge cannot reach, and edits/reactions in the window

    def describe(self) -> str:
        if self.redact_reachable:
            return "redact and purge"
        return "purge, redacting only what a purge cannot reach" if self.redact_unreachable else "purge only"


def room_path(mode: RedactMode, other_servers: bool) -> RoomPath:
    """``auto`` redacts in rooms that have or had members from other homeservers."""
    if mode == RedactMode.NEVER:
        return RoomPath(False, False)
    return RoomPath(mode == RedactMode.ALWAYS or other_servers, True)


def encrypted_files(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The encrypted attachments of a decrypted event's content (``file`` and the thumbnail's
    ``thumbnail_file``): each an mxc:// ``url`` with the key, iv and hashes that open it."""
    info = content.get("info")
    found = [content.get("file"), info.get("thumbnail_file") if isinstance(info, dict) else None]
    return [f for f in found if isinstance(f, dict) and str(f.get("url", "")).startswith("mxc://")]


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
