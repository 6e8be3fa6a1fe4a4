from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=18, description="Rooms being created are recorded first, so a crash leaves no orphan")
async def upgrade_v19(conn: Connection) -> None:
    # One row per space or room the bridge is about to create: its marker goes into the room's
    # creation content, and the row goes when the room is recorded as the team's. A row left
    # by a stopped process names a room that may exist on the homeserver and belong to no team.
    await conn.execute(
        """CREATE TABLE room_creation (
            marker      TEXT PRIMARY KEY,
            team_id     TEXT,
            kind        TEXT NOT NULL,
            boot        TEXT NOT NULL,
            started_at  BIGINT NOT NULL
        )"""
    )
    # Rooms made before markers existed: a database that has teams may have orphans of an
    # interrupted creation already; the next start looks for them once (the 'legacy' row).
    if await conn.fetchval("SELECT COUNT(*) FROM team"):
        await conn.execute(
            "INSERT INTO room_creation (marker, team_id, kind, boot, started_at) "
            "VALUES ('legacy', NULL, 'legacy', 'upgrade', 0)"
        )
