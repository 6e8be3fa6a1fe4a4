from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(
    index=21, description="SCIM provisioning: per-team bearer tokens (hashes only) and provisioned users"
)
async def upgrade_v22(conn: Connection) -> None:
    # A token belongs to one team. Only a SHA-256 of the secret is kept: the token is shown once.
    await conn.execute(
        """CREATE TABLE scim_token (
            id            TEXT PRIMARY KEY,
            team_id       TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            name          TEXT NOT NULL,
            secret_hash   TEXT NOT NULL,
            created_by    TEXT,
            created_at    BIGINT NOT NULL,
            last_used_at  BIGINT,
            revoked_at    BIGINT
        )"""
    )
    await conn.execute("CREATE INDEX scim_token_team ON scim_token (team_id)")
    # A member as the identity provider knows them: its userName and externalId (both encrypted,
    # P12; userName with a keyed HMAC for lookups), whether it is active, and the resource version.
    # Names, title and email live where the bot keeps them (profile, account); nothing else is kept.
    await conn.execute(
        """CREATE TABLE scim_user (
            id              TEXT PRIMARY KEY,
            team_id         TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            user_id         TEXT NOT NULL,
            user_name       TEXT NOT NULL,
            user_name_index TEXT NOT NULL,
            external_id     TEXT,
            active          BOOLEAN,  -- NULL: the provider never said (counts as active)
            version         BIGINT NOT NULL,
            created_at      BIGINT NOT NULL,
            updated_at      BIGINT NOT NULL,
            UNIQUE (team_id, user_id),
            UNIQUE (team_id, user_name_index)
        )"""
    )
