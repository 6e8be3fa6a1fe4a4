from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


# Version 14 (index 13): versions 10 to 13 belong to other branches; until they are merged
# mautrix fills their slots with no-op upgrades.
@upgrade_table.register(index=13, description="A timeline index of team rooms, so sweeps read only what expired")
async def upgrade_v14(conn: Connection, scheme: Scheme) -> None:
    # One row per team room the index knows. ``fill_token`` is where the last read of the
    # homeserver's history ended; ``needs_fill`` says the stream may have missed events since
    # (never read, or the bridge was down). ``redact`` is the team's redaction choice per team.
    await conn.execute(
        f"""CREATE TABLE timeline_room (
            id          {serial_key(scheme)},
            room_id     TEXT NOT NULL UNIQUE,
            needs_fill  BOOLEAN NOT NULL DEFAULT true,
            fill_token  TEXT
        )"""
    )
    # The homeservers whose users ever joined the room: a room that had remote members is
    # redacted in ``auto`` mode (their servers hold copies a purge here cannot reach).
    await conn.execute(
        """CREATE TABLE timeline_server (
            room        BIGINT NOT NULL REFERENCES timeline_room(id) ON DELETE CASCADE,
            server_name TEXT NOT NULL,
            PRIMARY KEY (room, server_name)
        )"""
    )
    # One small row per event: its place in arrival (stream) order, its timestamp, whether it
    # is state (never removed, but a place a purge may stop at) and whether it is redacted.
    await conn.execute(
        f"""CREATE TABLE timeline_event (
            position    {serial_key(scheme)},
            room        BIGINT NOT NULL REFERENCES timeline_room(id) ON DELETE CASCADE,
            event_id    TEXT NOT NULL UNIQUE,
            ts          BIGINT NOT NULL,
            state       BOOLEAN NOT NULL,
            redacted    BOOLEAN NOT NULL DEFAULT false
        )"""
    )
    await conn.execute("CREATE INDEX timeline_event_order ON timeline_event (room, position)")
    await conn.execute("CREATE INDEX timeline_event_age ON timeline_event (room, ts)")
    await conn.execute("ALTER TABLE team ADD COLUMN redact TEXT")
