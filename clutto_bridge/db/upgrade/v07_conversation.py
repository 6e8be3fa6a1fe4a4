from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(description="One chat with the bot: the team it is about, and welcomes sent per team")
async def upgrade_v7(conn: Connection) -> None:
    # A user in several teams names the team for their chat with the bot once (`team use`).
    await conn.execute(
        "ALTER TABLE management_room ADD COLUMN current_team TEXT REFERENCES team(id) ON DELETE SET NULL"
    )
    # Each team's welcome is sent once per user, however often they join its space.
    await conn.execute(
        """CREATE TABLE team_welcome (
            team_id     TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            user_id     TEXT NOT NULL,
            welcomed_at BIGINT NOT NULL,
            PRIMARY KEY (team_id, user_id)
        )"""
    )
