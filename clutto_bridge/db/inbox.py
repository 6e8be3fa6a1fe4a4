"""The inbox: every event of a transaction, written before the transaction is acknowledged.

The same database transaction adds the events of team rooms to the timeline index.

The events go in one database transaction, so after a crash either
the homeserver retries the transaction (nothing was written) or the bridge finds the events
here, unfinished, and handles them on its next start. The raw event is kept only until it
was handled; the row stays a while longer (``appservice.transaction_memory``) so the same
event arriving again, in a retry or under a reused transaction id, is not handled twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from clutto_bridge.crypto import FieldCipher
from clutto_bridge.db.connection import transaction
from clutto_bridge.db.encrypted import BY_NAME
from clutto_bridge.db.timeline import TimelineIndex

# Members' messages and commands (profile values, emails) until handled: encrypted (P12).
_EVENT = BY_NAME["inbox_event.event"]


@dataclass
class InboxEntry:
    id: int
    room_id: str
    event: dict[str, Any]
    attempts: int = 0


class Inbox:
    def __init__(self, db: Database, cipher: FieldCipher) -> None:
        self.db = db
        self.cipher = cipher

    async def accept(self, txn_id: str, events: list[dict[str, Any]], now_ms: int) -> list[InboxEntry]:
        """Keep the events not received before, atomically, and return them in order.

        The event id is the exactly-once key: an event already here (handled or not) is not
        kept or returned again, whatever transaction id carries it. The transaction id is
        kept beside each event only to say where it came from."""
        entries, new = [], []
        async with transaction(self.db) as conn:
            for event in events:
                event_id, room_id = event.get("event_id"), event.get("room_id")
                if not isinstance(event_id, str) or not isinstance(room_id, str):
                    continue  # not a room event: nothing the bridge acts on
                entry_id = await conn.fetchval(
                    "INSERT INTO inbox_event (event_id, room_id, txn_id, event, received_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING id",
                    event_id,
                    room_id,
                    txn_id,
                    self.cipher.encrypt(_EVENT.place(event_id), json.dumps(event)),
                    now_ms,
                )
                if entry_id is not None:
                    entries.append(InboxEntry(entry_id, room_id, event))
                    new.append(event)
            await TimelineIndex.record(conn, new)
        return entries

    async def done(self, entry_ids: list[int], now_ms: int) -> None:
        """The entries were handled: forget their content."""
        if not entry_ids:
            return
        async with transaction(self.db) as conn:
            for entry_id in entry_ids:
                await conn.execute("UPDATE inbox_event SET done_at=$1, event=NULL WHERE id=$2", now_ms, entry_id)

    async def unfinished(self) -> list[InboxEntry]:
        """Entries a stop or crash left unhandled, in the order they arrived; each call counts
        as one more attempt."""
        async with transaction(self.db) as conn:
            await conn.execute("UPDATE inbox_event SET attempts=attempts+1 WHERE done_at IS NULL")
            rows = await conn.fetch(
                "SELECT id, event_id, room_id, event, attempts FROM inbox_event WHERE done_at IS NULL ORDER BY id"
            )
        return [self._entry(row) for row in rows]

    async def forget_before(self, cutoff_ms: int) -> None:
        await self.db.execute("DELETE FROM inbox_event WHERE done_at IS NOT NULL AND done_at < $1", cutoff_ms)

    def _entry(self, row: Any) -> InboxEntry:
        event = self.cipher.decrypt(_EVENT.place(row["event_id"]), row["event"])
        return InboxEntry(row["id"], row["room_id"], json.loads(event), row["attempts"])
