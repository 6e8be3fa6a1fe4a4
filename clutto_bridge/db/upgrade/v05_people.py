from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="Profiles, policy consent, contact import permission and contacts")
async def upgrade_v5(conn: Connection, scheme: Scheme) -> None:
    serial = serial_key(scheme)
    # One profile per user, shared by all their teams. reminded_at: last reminder of a
    # missing required field or of missing consent (both go in one message).
    await conn.execute(
        """CREATE TABLE profile (
            user_id     TEXT PRIMARY KEY,
            first_name  TEXT,
            last_name   TEXT,
            designation TEXT,
            photo       TEXT,
            updated_at  BIGINT NOT NULL,
            reminded_at BIGINT
        )"""
    )
    await conn.execute(
        """CREATE TABLE policy_consent (
            user_id     TEXT NOT NULL,
            version     TEXT NOT NULL,
            accepted_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, version)
        )"""
    )
    # Which user was told about which policy version (new-member DM or version notice),
    # so a restart in the middle of an announcement neither skips nor repeats anyone.
    await conn.execute(
        """CREATE TABLE policy_notice (
            user_id TEXT NOT NULL,
            version TEXT NOT NULL,
            sent_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, version)
        )"""
    )
    await conn.execute(
        """CREATE TABLE contact_permission (
            user_id    TEXT PRIMARY KEY,
            granted_at BIGINT NOT NULL
        )"""
    )
    # card: the kept part of the vCard (name, emails, Matrix IDs) as JSON, one column so
    # field encryption (P12) can wrap it whole. matched: the homeserver user it found.
    await conn.execute(
        f"""CREATE TABLE contact (
            id          {serial},
            owner       TEXT NOT NULL,
            card        TEXT NOT NULL,
            matched     TEXT,
            imported_at BIGINT NOT NULL
        )"""
    )
    await conn.execute("CREATE INDEX contact_owner_idx ON contact (owner)")
    # History of grants and revocations (consent, contact permission, marketing): what a
    # member chose and when, kept for their own data export.
    await conn.execute(
        f"""CREATE TABLE privacy_choice (
            id      {serial},
            user_id TEXT NOT NULL,
            choice  TEXT NOT NULL,
            value   TEXT NOT NULL,
            ts      BIGINT NOT NULL
        )"""
    )
    # A user may have several direct chats with the bot; the bot writes to the newest.
    await conn.execute("ALTER TABLE management_room ADD COLUMN added_at BIGINT NOT NULL DEFAULT 0")
