from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=15, description="A restart marks rooms for a backward check instead of a forward fill")
async def upgrade_v16(conn: Connection) -> None:
    # The highest index position the room had when the bridge last started, until a sweep has
    # read the room's history back to an event known before then (what the stream may have
    # missed around the stop). Replaces marking every room for a forward fill from where its
    # last fill ended, which re-read everything since.
    await conn.execute("ALTER TABLE timeline_room ADD COLUMN check_mark BIGINT")
