from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.upgrade import serial_key, upgrade_table


@upgrade_table.register(description="A durable inbox of received events; a team remembers the command that created it")
async def upgrade_v8(conn: Connection, scheme: Scheme) -> None:
    # Written in the same database transaction that records the transaction id, before the
    # homeserver gets its answer; an entry is done once its event was handled. The raw event
    # is kept only until then.
    await conn.execute(
        f"""CREATE TABLE inbox_event (
            id          {serial_key(scheme)},
            event_id    TEXT NOT NULL UNIQUE,
            room_id     TEXT NOT NULL,
            txn_id      TEXT NOT NULL,
            event       TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            received_at BIGINT NOT NULL,
            done_at     BIGINT
        )"""
    )
    await conn.execute("CREATE INDEX inbox_event_pending ON inbox_event (done_at, id)")
    # `team create` run again for the same command event finishes that team, not a second one.
    await conn.execute("ALTER TABLE team ADD COLUMN created_by_event TEXT")
    await conn.execute("CREATE UNIQUE INDEX team_created_by_event ON team (created_by_event)")
