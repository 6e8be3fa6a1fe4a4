from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="Marketing choice of each user; record of notices sent")
async def upgrade_v4(conn: Connection, scheme: Scheme) -> None:
    serial = serial_key(scheme)
    # No row: the operator's default (policy.marketing_default) applies.
    await conn.execute(
        """CREATE TABLE marketing_choice (
            user_id    TEXT PRIMARY KEY,
            opted_in   BOOLEAN NOT NULL,
            changed_at BIGINT NOT NULL
        )"""
    )
    await conn.execute(
        f"""CREATE TABLE notice (
            id         {serial},
            ts         BIGINT NOT NULL,
            kind       TEXT NOT NULL,
            team_id    TEXT,
            sent_by    TEXT,
            delivered  INTEGER NOT NULL,
            skipped    INTEGER NOT NULL
        )"""
    )
