"""What events of team rooms referenced: media (Synapse keeps media when it purges events) and
relations (edits and reactions may be newer than the event they point at). Retention uses
both to remove everything that belongs to an expired event."""

from __future__ import annotations

from mautrix.util.async_db import Database


class ReferenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_media(self, room_id: str, event_id: str, mxc: str, ts: int) -> None:
        await self.db.execute(
            "INSERT INTO room_media (room_id, event_id, mxc, ts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            room_id,
            event_id,
            mxc,
            ts,
        )

    async def add_relation(self, room_id: str, event_id: str, target_id: str, rel_type: str, ts: int) -> None:
        await self.db.execute(
            "INSERT INTO room_relation (room_id, event_id, target_id, rel_type, ts) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT DO NOTHING",
            room_id,
            event_id,
            target_id,
            rel_type,
            ts,
        )

    async def relations_to_any(self, room_id: str, target_ids: list[str], since_ms: int) -> list[str]:
        """Events pointing at any of ``target_ids`` sent at or after ``since_ms``: one query per
        500 targets, not one per target."""
        found: list[str] = []
        for start in range(0, len(target_ids), 500):
            chunk = target_ids[start : start + 500]
            marks = ", ".join(f"${i}" for i in range(3, len(chunk) + 3))  # placeholders only, never input
            rows = await self.db.fetch(
                f"SELECT event_id FROM room_relation WHERE room_id=$1 AND ts >= $2 AND target_id IN ({marks})",
                room_id,
                since_ms,
                *chunk,
            )
            found += [r["event_id"] for r in rows]
        return found

    async def media_before(self, room_id: str, cutoff_ms: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT DISTINCT mxc FROM room_media WHERE room_id=$1 AND ts < $2", room_id, cutoff_ms
        )
        return [r["mxc"] for r in rows]

    async def used_outside(self, mxc: str, room_id: str, cutoff_ms: int) -> bool:
        """Whether any event other than this room's events before the cutoff references the media."""
        return bool(
            await self.db.fetchval(
                "SELECT COUNT(*) FROM room_media WHERE mxc=$1 AND NOT (room_id=$2 AND ts < $3)", mxc, room_id, cutoff_ms
            )
        )

    async def forget_media(self, mxc: str) -> None:
        await self.db.execute("DELETE FROM room_media WHERE mxc=$1", mxc)

    async def media_of_room(self, room_id: str) -> list[str]:
        return [r["mxc"] for r in await self.db.fetch("SELECT DISTINCT mxc FROM room_media WHERE room_id=$1", room_id)]

    async def forget_room_media(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM room_media WHERE room_id=$1", room_id)
