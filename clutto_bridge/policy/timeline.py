"""The timeline index: what the bridge keeps of each team room event, and where a purge may cut.

The index holds one small row per event (id, timestamp, state or not, redacted or not) in
the order the events reached the bridge, which is the homeserver's order. A sweep walks it
from the oldest row: the expired events before the first event inside the window are what
one purge removes; expired events after that point (imported history carries old
timestamps after newer events) are out of a purge's reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IndexEntry:
    event_id: str
    room_id: str
    ts: int
    state: bool
    redacted: bool = False
    session_id: str | None = None  # the Megolm session of an m.room.encrypted event


# Event types that carry no one's content (indexed like state: never expire, never end a walk).
NO_CONTENT = frozenset({"org.matrix.dummy_event"})


def index_entry(event: dict[str, Any]) -> IndexEntry | None:
    """The index row of a raw room event; None for what is not a room event or is a redaction
    (a redaction removes nothing by itself and is purged with the room's history)."""
    event_id, room_id, ts = event.get("event_id"), event.get("room_id"), event.get("origin_server_ts")
    if not isinstance(event_id, str) or not isinstance(room_id, str) or not isinstance(ts, int):
        return None
    if event.get("type") == "m.room.redaction":
        return None
    redacted = "redacted_because" in (event.get("unsigned") or {})
    # Synapse's dummy events (sent to merge forward extremities in busy rooms) carry nothing
    # and bear the time they were made: indexed like state, they neither end the purge walk
    # nor get redacted; a purge removes them with the history around them.
    kept_aside = "state_key" in event or event.get("type") in NO_CONTENT
    return IndexEntry(event_id, room_id, ts, kept_aside, redacted, megolm_session(event))


def megolm_session(event: dict[str, Any]) -> str | None:
    """The Megolm session an m.room.encrypted event names in the clear (None for anything else,
    a redacted one included: its content is gone)."""
    content = event.get("content")
    if event.get("type") != "m.room.encrypted" or not isinstance(content, dict):
        return None
    session_id = content.get("session_id")
    return session_id if isinstance(session_id, str) and session_id else None


def joined_server(event: dict[str, Any]) -> str | None:
    """The homeserver of a user this membership event joins to the room, if it is one."""
    if event.get("type") != "m.room.member" or not isinstance(event.get("state_key"), str):
        return None
    content = event.get("content")
    if not isinstance(content, dict) or content.get("membership") != "join":
        return None
    _, sep, server = event["state_key"].partition(":")
    return server if sep and server else None


@dataclass(frozen=True)
class Row:
    """An index row as the sweep reads it, in arrival order."""

    position: int
    event_id: str
    ts: int
    state: bool
    redacted: bool


@dataclass(frozen=True)
class HeadFacts:
    """A room's head as the database sums it up, for a walk that needs no slices: the first
    message inside the window, and the expired messages before it."""

    first_inside: tuple[int, str] | None  # (position, event id) of the first message inside the window
    first_expired: int | None  # position of the first message before it (None: nothing expired)
    oldest_expired_ts: int | None  # the oldest timestamp among those messages
    last_state: tuple[int, str] | None  # without a message inside the window: the latest state row after first_expired
    rows: int  # index rows before first_inside (or to the end), state included


@dataclass
class HeadScan:
    """Walks a room's index from the oldest row and finds the purge points.

    The last point is the first event inside the window, or, when every message expired,
    the last state event after an expired one (Synapse keeps state, so a purge may stop
    there). ``slice_ms`` adds a point whenever that much history has passed, so an operator
    can bound each purge; the default is one purge per room.
    """

    cutoff_ms: int
    slice_ms: int
    points: list[tuple[int, str]] = field(default_factory=list)  # (position, event id)
    slice_start: int | None = None
    candidate: tuple[int, str] | None = None  # the latest state row after an expired message
    closed: bool = False  # reached the first event inside the window

    def see(self, row: Row) -> bool:
        """Feed the next row; True when it is an expired message before the purge point."""
        if self.closed:
            return False
        if row.state:
            if self.slice_start is not None:
                self.candidate = (row.position, row.event_id)
            return False
        if row.ts >= self.cutoff_ms:
            if self.slice_start is not None:
                self.points.append((row.position, row.event_id))
            self.closed = True
            return False
        if self.slice_start is None:
            self.slice_start = row.ts
        elif row.ts - self.slice_start >= self.slice_ms:
            self.points.append((row.position, row.event_id))
            self.slice_start = row.ts
        return True

    def finish(self) -> None:
        """The index ended without an event inside the window: cut at the latest state row
        after an expired message, if there is one (messages after it stay out of reach)."""
        if not self.closed and self.candidate is not None:
            self.points.append(self.candidate)
        self.closed = True

    def fresh(self) -> bool:
        """Nothing seen yet (not a walk resumed halfway)."""
        return not self.closed and self.slice_start is None and not self.points and self.candidate is None

    def can_close_with(self, facts: HeadFacts) -> bool:
        """Whether ``facts`` settle the scan without walking it: no slice can start within
        the expired messages (every one is less than ``slice_ms`` older than the cutoff)."""
        return self.fresh() and (
            facts.oldest_expired_ts is None or self.cutoff_ms - facts.oldest_expired_ts <= self.slice_ms
        )

    def close_with(self, facts: HeadFacts) -> None:
        """What a walk of the same rows would conclude (see ``can_close_with``)."""
        if facts.first_expired is not None:
            self.slice_start = facts.oldest_expired_ts
            point = facts.first_inside or facts.last_state
            if point is not None:
                self.points.append(point)
        self.closed = True

    @property
    def purge_position(self) -> int | None:
        """Rows before this position are gone once every purge ran."""
        return self.points[-1][0] if self.points else None

    def state(self) -> dict[str, Any]:
        return {
            "points": [list(p) for p in self.points],
            "slice_start": self.slice_start,
            "candidate": list(self.candidate) if self.candidate else None,
            "closed": self.closed,
        }

    @classmethod
    def load(cls, cutoff_ms: int, slice_ms: int, saved: dict[str, Any] | None) -> HeadScan:
        if not saved:
            return cls(cutoff_ms, slice_ms)
        candidate = saved.get("candidate")
        return cls(
            cutoff_ms,
            slice_ms,
            [tuple(p) for p in saved["points"]],
            saved.get("slice_start"),
            tuple(candidate) if candidate else None,
            saved.get("closed", False),
        )


@dataclass
class CheckWalk:
    """A read of a room's history backwards from its end, after a restart, down to the first
    event the index knew before it: what the stream may have missed or delivered late lies
    after that event, so nothing older needs reading again.

    Only the compact index entries are kept (a long downtime may mean many events), newest
    first as read; ``forward`` gives them in the homeserver's order, as the index holds them.
    """

    room_id: str
    entries: list[IndexEntry] = field(default_factory=list)  # newest first
    servers: set[str] = field(default_factory=set)
    met: bool = False  # reached an event the index knew before the restart

    @staticmethod
    def ids(page: list[dict[str, Any]]) -> list[str]:
        """The event ids of a page, to ask the index which of them it knew."""
        return [e["event_id"] for e in page if isinstance(e.get("event_id"), str)]

    def see(self, page: list[dict[str, Any]], known: set[str]) -> list[dict[str, Any]]:
        """Take one page read backwards; returns its events newer than the first known one
        (all of them when none is known), whose entries are now kept."""
        taken: list[dict[str, Any]] = []
        for event in page:
            if event.get("event_id") in known:
                self.met = True
                break
            taken.append(event)
            entry = index_entry(event)
            if entry is not None and entry.room_id == self.room_id:
                self.entries.append(entry)
            server = joined_server(event)
            if server:
                self.servers.add(server)
        return taken

    def forward(self) -> list[IndexEntry]:
        return self.entries[::-1]
