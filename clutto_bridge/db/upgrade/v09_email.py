from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(description="Team email addresses: which teams take mail, and their email room")
async def upgrade_v9(conn: Connection) -> None:
    # Only the address and where its notices go; no message, header or body is ever stored.
    await conn.execute(
        """CREATE TABLE team_email (
            team_id     TEXT PRIMARY KEY REFERENCES team(id) ON DELETE CASCADE,
            local_part  TEXT NOT NULL UNIQUE,
            enabled     BOOLEAN NOT NULL,
            room_id     TEXT,
            changed_at  BIGINT NOT NULL
        )"""
    )
