from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(description="Names that say what they hold; every *_at in milliseconds")
async def upgrade_v6(conn: Connection) -> None:
    # The column holds the labels of the trial warnings sent ("7d,1d"), not a time.
    await conn.execute("ALTER TABLE team RENAME COLUMN warned_at TO warnings_sent")
    # added_at was written in microseconds; every other *_at is in milliseconds.
    await conn.execute("UPDATE management_room SET added_at = added_at / 1000 WHERE added_at > 100000000000000")
    await conn.execute("CREATE INDEX job_finished_idx ON job (state, updated_at)")
