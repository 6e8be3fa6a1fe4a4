from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=16, description="Rows the stream writes during a fill are placed after it")
async def upgrade_v17(conn: Connection) -> None:
    # Rows the stream wrote while their room's fill or check was pending: they arrived after
    # what the fill reads next, so when it ends they are placed after everything it placed.
    await conn.execute("ALTER TABLE timeline_event ADD COLUMN while_filling BOOLEAN NOT NULL DEFAULT false")
