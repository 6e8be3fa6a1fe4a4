from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


# Version 11 (v10 is another change's); mautrix fills a gap with a no-op until it lands.
@upgrade_table.register(index=10, description="Privacy portal: sign-in links, sessions, cookie choices")
async def upgrade_v11(conn: Connection, scheme: Scheme) -> None:
    # Links and sessions are kept as SHA-256 hashes of their secrets, never the secrets.
    await conn.execute(
        """CREATE TABLE portal_link (
            token_hash  TEXT PRIMARY KEY,
            user_id     TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            expires_at  BIGINT NOT NULL,
            used_at     BIGINT
        )"""
    )
    await conn.execute("CREATE INDEX portal_link_user ON portal_link (user_id, created_at)")
    await conn.execute(
        """CREATE TABLE portal_session (
            id_hash     TEXT PRIMARY KEY,
            user_id     TEXT,
            data        TEXT NOT NULL,
            expires_at  BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX portal_session_user ON portal_session (user_id)")
    await conn.execute(
        f"""CREATE TABLE cookie_choice (
            id              {serial_key(scheme)},
            user_id         TEXT NOT NULL,
            categories      TEXT NOT NULL,
            policy_version  TEXT NOT NULL,
            ts              BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX cookie_choice_user ON cookie_choice (user_id, id)")
