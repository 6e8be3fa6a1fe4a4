from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="Accounts the bridge created, room archiving, integrations, audit log")
async def upgrade_v2(conn: Connection, scheme: Scheme) -> None:
    # The bridge never stores passwords. The email is the only contact detail kept; the
    # column holds the value as given until field encryption lands, then its ciphertext.
    await conn.execute(
        """CREATE TABLE account (
            user_id    TEXT PRIMARY KEY,
            email      TEXT,
            created_at BIGINT NOT NULL
        )"""
    )
    await conn.execute("ALTER TABLE team_room ADD COLUMN archived_at BIGINT")
    await conn.execute("ALTER TABLE team_room ADD COLUMN members TEXT")
    await conn.execute(
        """CREATE TABLE integration_allow (
            team_id TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            kind    TEXT NOT NULL,
            value   TEXT NOT NULL,
            PRIMARY KEY (team_id, kind, value)
        )"""
    )
    # What the bridge did or refused on a team's behalf. Later work chains and signs it.
    id_column = serial_key(scheme)
    await conn.execute(
        f"""CREATE TABLE audit_log (
            id      {id_column},
            ts      BIGINT NOT NULL,
            team_id TEXT,
            actor   TEXT,
            action  TEXT NOT NULL,
            target  TEXT,
            detail  TEXT
        )"""
    )
    await conn.execute("CREATE INDEX audit_log_team_idx ON audit_log (team_id, ts)")
