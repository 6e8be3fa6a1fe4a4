from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=17, description="Transaction ids no longer decide what is a repeat")
async def upgrade_v18(conn: Connection) -> None:
    # A homeserver reuses transaction ids after a restart; the inbox's event ids are the key.
    await conn.execute("DROP TABLE appservice_txn")
