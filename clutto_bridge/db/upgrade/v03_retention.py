from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="Durable jobs, retention settings, legal holds, media and relations seen")
async def upgrade_v3(conn: Connection, scheme: Scheme) -> None:
    serial = serial_key(scheme)
    # A job is claimed with a lease (locked_until); progress is its checkpoint, so a job whose
    # worker died is picked up again after the lease and continues where it stopped.
    await conn.execute(
        f"""CREATE TABLE job (
            id            {serial},
            kind          TEXT NOT NULL,
            team_id       TEXT,
            state         TEXT NOT NULL,
            payload       TEXT NOT NULL,
            progress      TEXT NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            next_run_at   BIGINT NOT NULL,
            locked_by     TEXT,
            locked_until  BIGINT,
            created_at    BIGINT NOT NULL,
            updated_at    BIGINT NOT NULL,
            error         TEXT
        )"""
    )
    await conn.execute("CREATE INDEX job_ready_idx ON job (state, next_run_at)")
    await conn.execute("CREATE INDEX job_team_idx ON job (team_id, kind)")
    # NULL retention means the operator's default applies.
    await conn.execute("ALTER TABLE team ADD COLUMN retention_seconds BIGINT")
    await conn.execute("ALTER TABLE team ADD COLUMN export_before_purge BOOLEAN NOT NULL DEFAULT false")
    await conn.execute("ALTER TABLE team ADD COLUMN warned_at TEXT NOT NULL DEFAULT ''")
    # room_id '' holds the whole team.
    await conn.execute(
        """CREATE TABLE legal_hold (
            team_id   TEXT NOT NULL REFERENCES team(id) ON DELETE CASCADE,
            room_id   TEXT NOT NULL,
            placed_by TEXT,
            placed_at BIGINT NOT NULL,
            reason    TEXT NOT NULL,
            PRIMARY KEY (team_id, room_id)
        )"""
    )
    # Synapse keeps media when it purges events: the bridge remembers which events of team
    # rooms referenced which media, to delete what only removed events referenced.
    await conn.execute(
        """CREATE TABLE room_media (
            room_id  TEXT NOT NULL,
            event_id TEXT NOT NULL,
            mxc      TEXT NOT NULL,
            ts       BIGINT NOT NULL,
            PRIMARY KEY (room_id, event_id, mxc)
        )"""
    )
    await conn.execute("CREATE INDEX room_media_mxc_idx ON room_media (mxc)")
    # Edits and reactions point at their event; they go when it goes.
    await conn.execute(
        """CREATE TABLE room_relation (
            room_id   TEXT NOT NULL,
            event_id  TEXT NOT NULL,
            target_id TEXT NOT NULL,
            rel_type  TEXT NOT NULL,
            ts        BIGINT NOT NULL,
            PRIMARY KEY (room_id, event_id)
        )"""
    )
    await conn.execute("CREATE INDEX room_relation_target_idx ON room_relation (room_id, target_id)")
