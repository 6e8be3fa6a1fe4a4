from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(description="Teams, their rooms and members; appservice transactions")
async def upgrade_v1(conn: Connection) -> None:
    # A team is created in steps (space, rooms, links); state says how far it got so a
    # restart can finish the work instead of creating anything twice.
    await conn.execute(
        """CREATE TABLE team (
            id            TEXT PRIMARY KEY,
            name          TEXT NOT NULL,
            name_key      TEXT NOT NULL UNIQUE,
            owner         TEXT NOT NULL,
            space_id      TEXT UNIQUE,
            state         TEXT NOT NULL,
            plan          TEXT NOT NULL,
            created_at    BIGINT NOT NULL,
            trial_ends_at BIGINT NOT NULL,
            purge_after   BIGINT NOT NULL
        )"""
    )
    await conn.execute(
        """CREATE TABLE team_room (
            room_id    TEXT PRIMARY KEY,
            team_id    TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            kind       TEXT NOT NULL,
            name       TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX team_room_team_idx ON team_room (team_id)")
    # created_by_bridge marks accounts the bridge made, which a team purge may deactivate.
    await conn.execute(
        """CREATE TABLE team_member (
            team_id           TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            user_id           TEXT NOT NULL,
            role              TEXT NOT NULL,
            membership        TEXT NOT NULL,
            created_by_bridge BOOLEAN NOT NULL DEFAULT false,
            added_at          BIGINT NOT NULL,
            PRIMARY KEY (team_id, user_id)
        )"""
    )
    await conn.execute("CREATE INDEX team_member_user_idx ON team_member (user_id)")
    await conn.execute(
        """CREATE TABLE management_room (
            room_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL
        )"""
    )
    await conn.execute(
        """CREATE TABLE appservice_txn (
            txn_id      TEXT PRIMARY KEY,
            received_at BIGINT NOT NULL
        )"""
    )
