"""The bot's Megolm sessions of team rooms, as retention sees them.

mautrix's crypto store (``crypto_megolm_inbound_session``, its copy of every room key the bot
received or made; ``crypto_megolm_outbound_session``, the key it sends with) lives in the
bridge database. The timeline index notes which session each encrypted event of a team room
used, with the span of their timestamps (``timeline_session``). Here the two meet: a session
whose newest message expired is deleted from the store, so neither the bridge nor a backup of
its database can decrypt what retention removed.

mautrix keeps no session in memory between uses (each decryption reads the store), so rows
deleted here are gone for the running device too.
"""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database

from clutto_bridge.db.connection import transaction

# The index's sessions of one room whose newest message is older than the cutoff.
_EXPIRED = "SELECT session_id FROM timeline_session WHERE room=$2 AND newest_ts < $3"


@dataclass(frozen=True)
class SessionSpan:
    """The oldest and newest timestamp among the indexed messages of one session."""

    oldest_ts: int
    newest_ts: int


class MegolmSessions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def forget_expired(self, room_id: str, cutoff_ms: int) -> int:
        """Delete the bot's copies of the room's sessions whose every indexed message is older
        than ``cutoff_ms``, and their index rows, in one transaction. Returns how many sessions
        the crypto store held (counted in the room's ``sessions_deleted``)."""
        async with transaction(self.db) as conn:
            room = await conn.fetchval("SELECT id FROM timeline_room WHERE room_id=$1", room_id)
            if room is None:
                return 0
            deleted = await conn.fetchval(
                f"SELECT COUNT(*) FROM crypto_megolm_inbound_session WHERE room_id=$1 AND session_id IN ({_EXPIRED})",
                room_id,
                room,
                cutoff_ms,
            )
            for table in ("crypto_megolm_inbound_session", "crypto_megolm_outbound_session"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE room_id=$1 AND session_id IN ({_EXPIRED})", room_id, room, cutoff_ms
                )
            await conn.execute("DELETE FROM timeline_session WHERE room=$1 AND newest_ts < $2", room, cutoff_ms)
            if deleted:
                await conn.execute(
                    "UPDATE timeline_room SET sessions_deleted = sessions_deleted + $2 WHERE id=$1", room, deleted
                )
        return deleted

    async def forget_room(self, room_id: str) -> int:
        """The room is deleted: every session of it goes (the index rows go with the index)."""
        async with transaction(self.db) as conn:
            count = await conn.fetchval("SELECT COUNT(*) FROM crypto_megolm_inbound_session WHERE room_id=$1", room_id)
            await conn.execute("DELETE FROM crypto_megolm_inbound_session WHERE room_id=$1", room_id)
            await conn.execute("DELETE FROM crypto_megolm_outbound_session WHERE room_id=$1", room_id)
        return count

    async def span(self, room_id: str, session_id: str) -> SessionSpan | None:
        """The span of the session's indexed messages in the room; None when none is indexed."""
        row = await self.db.fetchrow(
            "SELECT s.oldest_ts, s.newest_ts FROM timeline_session s JOIN timeline_room r ON r.id = s.room "
            "WHERE r.room_id=$1 AND s.session_id=$2",
            room_id,
            session_id,
        )
        return SessionSpan(row["oldest_ts"], row["newest_ts"]) if row else None

    async def kept(self, room_id: str) -> int:
        """Sessions of the room the bot holds a key of."""
        return await self.db.fetchval(
            "SELECT COUNT(*) FROM crypto_megolm_inbound_session WHERE room_id=$1 AND session IS NOT NULL", room_id
        )

    async def deleted(self, room_id: str) -> int:
        """Sessions of the room that sweeps deleted."""
        return await self.db.fetchval("SELECT sessions_deleted FROM timeline_room WHERE room_id=$1", room_id) or 0
