from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(
    index=20, description="The Megolm session of each encrypted team room event, so keys follow retention"
)
async def upgrade_v21(conn: Connection) -> None:
    # One row per Megolm session a team room's encrypted events used (an m.room.encrypted event
    # names its session in the clear): the oldest and newest timestamp among them. A sweep deletes
    # the bot's copy of a session whose newest message expired, and the bot shares no key of a
    # session with a message older than the retention. Rows outlive the event rows a purge prunes.
    await conn.execute(
        """CREATE TABLE timeline_session (
            room        BIGINT NOT NULL REFERENCES timeline_room(id) ON DELETE CASCADE,
            session_id  TEXT NOT NULL,
            oldest_ts   BIGINT NOT NULL,
            newest_ts   BIGINT NOT NULL,
            PRIMARY KEY (room, session_id)
        )"""
    )
    await conn.execute("CREATE INDEX timeline_session_age ON timeline_session (room, newest_ts)")
    # How many of the bot's sessions of the room sweeps deleted (`retention status`).
    await conn.execute("ALTER TABLE timeline_room ADD COLUMN sessions_deleted BIGINT NOT NULL DEFAULT 0")
