"""The timeline index of team rooms (see ``policy/timeline.py``): written with each appservice
transaction, filled from the homeserver where the stream may have missed events (rooms never
read, and after a restart what came after the last event known before it), read by sweeps in
position ranges, pruned as purges remove history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Connection, Database

from clutto_bridge.db.connection import transaction
from clutto_bridge.policy.timeline import CheckWalk, HeadFacts, IndexEntry, Row, index_entry, joined_server

_ROW = "position, event_id, ts, state, redacted"
END = 2**62  # a position after every row
PRUNE_BATCH = 5_000  # index rows forgotten per transaction after a purge


@dataclass
class IndexedRoom:
    id: int
    room_id: str
    needs_fill: bool
    fill_token: str | None
    # The highest position the room had when the bridge last started, until a sweep has read
    # the history back to an event known by then (None: no check pending).
    check_mark: int | None = None


def _row(r: Any) -> Row:
    return Row(r["position"], r["event_id"], r["ts"], bool(r["state"]), bool(r["redacted"]))


async def _note_sessions(conn: Connection, room: int, entries: list[IndexEntry]) -> None:
    """Widen each Megolm session's span of timestamps by its events among ``entries``."""
    spans: dict[str, tuple[int, int]] = {}
    for e in entries:
        if e.session_id is not None:
            oldest, newest = spans.get(e.session_id, (e.ts, e.ts))
            spans[e.session_id] = (min(oldest, e.ts), max(newest, e.ts))
    if spans:
        await conn.executemany(
            "INSERT INTO timeline_session (room, session_id, oldest_ts, newest_ts) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (room, session_id) DO UPDATE SET "
            "oldest_ts = CASE WHEN excluded.oldest_ts < timeline_session.oldest_ts "
            "THEN excluded.oldest_ts ELSE timeline_session.oldest_ts END, "
            "newest_ts = CASE WHEN excluded.newest_ts > timeline_session.newest_ts "
            "THEN excluded.newest_ts ELSE timeline_session.newest_ts END",
            [(room, session, oldest, newest) for session, (oldest, newest) in sorted(spans.items())],
        )


class TimelineIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the live path: inside the inbox's transaction -------------------------------------

    @staticmethod
    async def record(conn: Connection, events: Iterable[dict[str, Any]]) -> None:
        """Index the team room events of one appservice transaction, in arrival order."""
        by_room: dict[str, list[tuple[IndexEntry, str | None]]] = {}
        for event in events:
            entry = index_entry(event)
            if entry is not None:
                by_room.setdefault(entry.room_id, []).append((entry, joined_server(event)))
        for room_id, entries in by_room.items():
            await conn.execute(
                "INSERT INTO timeline_room (room_id) SELECT room_id FROM team_room WHERE room_id=$1 "
                "ON CONFLICT (room_id) DO NOTHING",
                room_id,
            )
            found = await conn.fetchrow(
                "SELECT id, needs_fill, check_mark FROM timeline_room WHERE room_id=$1", room_id
            )
            if found is None:
                continue  # not a team room
            room = found["id"]
            # While a fill or check of the room is pending, what arrives now is newer than the
            # history it has yet to place: flagged, it is moved after that history at the end.
            filling = bool(found["needs_fill"]) or found["check_mark"] is not None
            await conn.executemany(
                "INSERT INTO timeline_event (room, event_id, ts, state, redacted, while_filling) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
                [(room, e.event_id, e.ts, e.state, e.redacted, filling) for e, _ in entries],
            )
            await _note_sessions(conn, room, [e for e, _ in entries])
            servers = {server for _, server in entries if server}
            if servers:
                await conn.executemany(
                    "INSERT INTO timeline_server (room, server_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    [(room, server) for server in sorted(servers)],
                )

    # --- rooms -------------------------------------------------------------------------------

    async def room(self, room_id: str) -> IndexedRoom:
        """The room's index entry, created (to be filled from the beginning) when missing."""
        await self.db.execute(
            "INSERT INTO timeline_room (room_id) VALUES ($1) ON CONFLICT (room_id) DO NOTHING", room_id
        )
        room = await self.find_room(room_id)
        assert room is not None  # inserted just now
        return room

    async def find_room(self, room_id: str) -> IndexedRoom | None:
        """The room's index entry, or None where the room was never indexed (nothing is created)."""
        r = await self.db.fetchrow(
            "SELECT id, room_id, needs_fill, fill_token, check_mark FROM timeline_room WHERE room_id=$1", room_id
        )
        return (
            IndexedRoom(r["id"], r["room_id"], bool(r["needs_fill"]), r["fill_token"], r["check_mark"]) if r else None
        )

    async def mark_for_check(self) -> None:
        """The bridge (re)starts: events sent around or after the stop may be missing from the
        stream or arrive late, but everything acknowledged before it is indexed (rows are written
        in the transaction that accepts the appservice transaction). So each room only needs its
        history read back to its highest position now, not forward from its last fill.

        A pending mark is kept (the earliest: a second restart before a sweep must not hide
        what the first one missed); rooms still to be filled forward need no mark.
        """
        await self.db.execute(
            "UPDATE timeline_room SET check_mark = COALESCE("
            "(SELECT MAX(e.position) FROM timeline_event e WHERE e.room = timeline_room.id), 0) "
            "WHERE check_mark IS NULL AND needs_fill = false"
        )

    async def servers(self, room_id: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT s.server_name FROM timeline_server s JOIN timeline_room r ON r.id = s.room WHERE r.room_id=$1",
            room_id,
        )
        return {r["server_name"] for r in rows}

    async def forget_room(self, room_id: str) -> None:
        async with transaction(self.db) as conn:
            room = await conn.fetchval("SELECT id FROM timeline_room WHERE room_id=$1", room_id)
            if room is not None:
                await conn.execute("DELETE FROM timeline_event WHERE room=$1", room)
                await conn.execute("DELETE FROM timeline_session WHERE room=$1", room)
                await conn.execute("DELETE FROM timeline_server WHERE room=$1", room)
                await conn.execute("DELETE FROM timeline_room WHERE id=$1", room)

    # --- filling from the homeserver ------------------------------------------------------------

    async def fill(
        self, room: IndexedRoom, events: list[dict[str, Any]], resume_token: str | None, finished: bool
    ) -> None:
        """Index one page read from the homeserver, in its order, and remember where to go on.

        Events the stream already indexed are placed again (deleted and inserted), so the
        index order follows the homeserver's order even where the stream delivered late.
        """
        entries = [e for e in map(index_entry, events) if e is not None and e.room_id == room.room_id]
        servers = {s for s in map(joined_server, events) if s}
        async with transaction(self.db) as conn:
            await self._place(conn, room.id, entries, servers)
            if finished:
                await self._place_stream_rows_last(conn, room.id)
            await conn.execute(
                "UPDATE timeline_room SET fill_token=$2, needs_fill=$3 WHERE id=$1", room.id, resume_token, not finished
            )
        room.fill_token, room.needs_fill = resume_token, not finished

    async def known_before_check(self, room: IndexedRoom, event_ids: list[str]) -> set[str]:
        """Which of ``event_ids`` the index held when the bridge started (position <= the mark)."""
        if not event_ids or room.check_mark is None:
            return set()
        marks = ", ".join(f"${i}" for i in range(3, len(event_ids) + 3))
        rows = await self.db.fetch(
            f"SELECT event_id FROM timeline_event WHERE room=$1 AND position <= $2 AND event_id IN ({marks})",
            room.id,
            room.check_mark,
            *event_ids,
        )
        return {r["event_id"] for r in rows}

    async def finish_check(self, room: IndexedRoom, walk: CheckWalk) -> None:
        """Index what a check read, in the homeserver's order after what the index knew, and
        clear the mark in the same transaction (a crash before leaves it: the walk is redone)."""
        async with transaction(self.db) as conn:
            await self._place(conn, room.id, walk.forward(), walk.servers)
            await self._place_stream_rows_last(conn, room.id)
            await conn.execute("UPDATE timeline_room SET check_mark=NULL WHERE id=$1", room.id)
        room.check_mark = None

    @classmethod
    async def _place_stream_rows_last(cls, conn: Connection, room: int) -> None:
        """Move the rows the stream wrote while the fill or check was pending, and that it did
        not place itself, after what it placed, in their order. Left before it, a newer message
        inside the window would come first in the index, and a purge up to it would remove the
        older messages of the window placed after it."""
        rows = await conn.fetch(
            "SELECT event_id, ts, state, redacted FROM timeline_event WHERE room=$1 AND while_filling ORDER BY position",
            room,
        )
        entries = [IndexEntry(r["event_id"], "", r["ts"], bool(r["state"]), bool(r["redacted"])) for r in rows]
        await cls._place(conn, room, entries, set())

    @staticmethod
    async def _place(conn: Connection, room: int, entries: list[IndexEntry], servers: set[str]) -> None:
        """Events the stream already indexed are placed again (deleted and inserted), so the
        index order follows the homeserver's order even where the stream delivered late."""
        await conn.executemany("DELETE FROM timeline_event WHERE event_id=$1", [(e.event_id,) for e in entries])
        await conn.executemany(
            "INSERT INTO timeline_event (room, event_id, ts, state, redacted) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (event_id) DO NOTHING",  # the stream may deliver it at this moment
            [(room, e.event_id, e.ts, e.state, e.redacted) for e in entries],
        )
        await _note_sessions(conn, room, entries)
        await conn.executemany(
            "INSERT INTO timeline_server (room, server_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [(room, s) for s in sorted(servers)],
        )

    # --- what a sweep reads ------------------------------------------------------------------------

    async def rows_after(self, room: int, position: int, limit: int) -> list[Row]:
        """The room's rows after ``position`` in arrival order (the walk from the oldest)."""
        rows = await self.db.fetch(
            f"SELECT {_ROW} FROM timeline_event WHERE room=$1 AND position > $2 ORDER BY room, position LIMIT $3",
            room,
            position,
            limit,
        )
        return [_row(r) for r in rows]

    async def head(self, room: int, after: int, cutoff_ms: int) -> HeadFacts:
        """The head after ``position`` summed up by the database in three indexed queries
        (a walk fetching every row costs about 12 µs a row in Python)."""
        # ``ts + 0`` and ``ORDER BY room, position``: along the room's position index this stops
        # at the first row inside the window; through the age index it would read the whole
        # window, and through the primary key every other room's rows after ``after`` too
        # (PostgreSQL chose that where one room held most rows). Queries below that walk one
        # room in order say ``ORDER BY room, position`` for the same reason.
        inside = await self.db.fetchrow(
            "SELECT position, event_id FROM timeline_event WHERE room=$1 AND position > $2 AND state=false "
            "AND ts + 0 >= $3 ORDER BY room, position LIMIT 1",
            room,
            after,
            cutoff_ms,
        )
        before = inside["position"] if inside else END
        span = await self.db.fetchrow(
            "SELECT COUNT(*) AS n, MIN(CASE WHEN state=false THEN position END) AS first, "
            "MIN(CASE WHEN state=false THEN ts END) AS oldest FROM timeline_event "
            "WHERE room=$1 AND position > $2 AND position < $3",
            room,
            after,
            before,
        )
        assert span is not None  # an aggregate query has one row
        last_state = None
        if inside is None and span["first"] is not None:
            last_state = await self.db.fetchrow(
                "SELECT position, event_id FROM timeline_event WHERE room=$1 AND position > $2 AND state=true "
                "ORDER BY room DESC, position DESC LIMIT 1",
                room,
                span["first"],
            )
        return HeadFacts(
            (inside["position"], inside["event_id"]) if inside else None,
            span["first"],
            span["oldest"],
            (last_state["position"], last_state["event_id"]) if last_state else None,
            span["n"],
        )

    async def relations_inside_window(
        self, room_id: str, room: int, after: int, before: int, cutoff_ms: int
    ) -> list[str]:
        """Edits and reactions from inside the window of the messages between two positions
        that are not redacted yet (a purge up to ``before`` cannot reach them)."""
        rows = await self.db.fetch(
            "SELECT r.event_id FROM timeline_event t JOIN room_relation r ON r.room_id=$1 AND r.target_id=t.event_id "
            "WHERE t.room=$2 AND t.position > $3 AND t.position < $4 AND t.state=false AND t.redacted=false "
            "AND r.ts >= $5 ORDER BY t.position",
            room_id,
            room,
            after,
            before,
            cutoff_ms,
        )
        return list(dict.fromkeys(r["event_id"] for r in rows))

    async def count_expired(self, room: IndexedRoom, cutoff_ms: int) -> int:
        """Expired messages not yet redacted, with their edits and reactions from inside the
        window: what a sweep would remove, read through the age index (no walk of the room)."""
        messages = await self.db.fetchval(
            "SELECT COUNT(*) FROM timeline_event WHERE room=$1 AND ts < $2 AND state=false AND redacted=false",
            room.id,
            cutoff_ms,
        )
        relations = await self.db.fetchval(
            "SELECT COUNT(DISTINCT r.event_id) FROM timeline_event t JOIN room_relation r "
            "ON r.room_id=$3 AND r.target_id=t.event_id WHERE t.room=$1 AND t.ts < $2 AND t.state=false "
            "AND t.redacted=false AND r.ts >= $2",
            room.id,
            cutoff_ms,
            room.room_id,
        )
        return messages + relations

    async def first_expired_after(self, room: int, position: int, cutoff_ms: int) -> int | None:
        """The position of the first expired message not yet redacted after ``position``, or
        None. ``position + 0`` keeps both databases off the position index, whose walk from
        ``position`` would cover the whole window when nothing lies there (the usual case):
        through the age index this reads the expired rows only."""
        return await self.db.fetchval(
            "SELECT MIN(position + 0) FROM timeline_event WHERE room=$1 AND ts < $2 AND position + 0 > $3 "
            "AND state=false AND redacted=false",
            room,
            cutoff_ms,
            position,
        )

    async def expired_after(self, room: int, position: int, cutoff_ms: int, limit: int) -> list[Row]:
        """Expired messages not yet redacted that lie after ``position`` (out of a purge's reach)."""
        rows = await self.db.fetch(
            f"SELECT {_ROW} FROM timeline_event WHERE room=$1 AND ts < $2 AND position > $3 "
            "AND state=false AND redacted=false ORDER BY room, position LIMIT $4",
            room,
            cutoff_ms,
            position,
            limit,
        )
        return [_row(r) for r in rows]

    async def mark_redacted(self, event_ids: list[str]) -> None:
        await self.db.executemany(
            "UPDATE timeline_event SET redacted=true WHERE event_id=$1", [(e,) for e in event_ids]
        )

    async def prune_before(self, room: int, position: int) -> int:
        """A purge removed the room's history before ``position``: forget those rows. Returns
        how many were messages not redacted before (what the purge alone removed).

        In transactions of ``PRUNE_BATCH`` rows, counted rather than returned: a purge of
        100,000 events returned as rows took 11.5 MiB, and one long write held the database
        the stream writes to."""
        removed = 0
        while True:
            async with transaction(self.db) as conn:
                last = await conn.fetchval(
                    "SELECT position FROM timeline_event WHERE room=$1 AND position < $2 "
                    "ORDER BY room, position LIMIT 1 OFFSET $3",
                    room,
                    position,
                    PRUNE_BATCH - 1,
                )
                upto = position if last is None else last + 1
                removed += await conn.fetchval(
                    "SELECT COUNT(*) FROM timeline_event WHERE room=$1 AND position < $2 AND state=false "
                    "AND redacted=false",
                    room,
                    upto,
                )
                await conn.execute("DELETE FROM timeline_event WHERE room=$1 AND position < $2", room, upto)
            if last is None:
                return removed

    async def count(self, room: int) -> int:
        return await self.db.fetchval("SELECT COUNT(*) FROM timeline_event WHERE room=$1", room)
