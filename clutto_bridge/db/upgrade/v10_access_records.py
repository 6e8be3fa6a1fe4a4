from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="Access records: requests the bridge served, as policy.collection keeps them")
async def upgrade_v10(conn: Connection, scheme: Scheme) -> None:
    # The route template, never the path (paths hold user and room ids); the client, user
    # agent, referrer and language only in the form policy.collection allows (often NULL).
    await conn.execute(
        f"""CREATE TABLE access_record (
            id          {serial_key(scheme)},
            at          BIGINT NOT NULL,
            method      TEXT NOT NULL,
            route       TEXT NOT NULL,
            status      INTEGER NOT NULL,
            client      TEXT,
            user_agent  TEXT,
            referrer    TEXT,
            language    TEXT
        )"""
    )
    await conn.execute("CREATE INDEX access_record_at_idx ON access_record (at)")
