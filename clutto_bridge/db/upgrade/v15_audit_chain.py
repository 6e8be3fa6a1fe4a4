import json

from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.crypto.chain import GENESIS, row_hash
from clutto_bridge.db.upgrade import serial_key, upgrade_table

BATCH = 1000


# v10 to v14 are other work of the same release; until they land here they are no-ops.
@upgrade_table.register(index=14, description="Hash-chained audit log with signed checkpoints")
async def upgrade_v15(conn: Connection, scheme: Scheme) -> None:
    await conn.execute("ALTER TABLE audit_log ADD COLUMN prev_hash TEXT")
    await conn.execute("ALTER TABLE audit_log ADD COLUMN hash TEXT")
    # One row; every append updates it first, so appends from several processes queue
    # behind each other (a row lock on PostgreSQL, the write lock on SQLite).
    await conn.execute("CREATE TABLE audit_chain_lock (id INTEGER PRIMARY KEY, appends BIGINT NOT NULL)")
    await conn.execute("INSERT INTO audit_chain_lock (id, appends) VALUES (1, 0)")
    await conn.execute(
        f"""CREATE TABLE audit_checkpoint (
            id         {serial_key(scheme)},
            row_id     BIGINT NOT NULL,
            head_hash  TEXT NOT NULL,
            ts         BIGINT NOT NULL,
            key_id     TEXT NOT NULL,
            signature  TEXT NOT NULL
        )"""
    )
    # Public keys of every key that signed a checkpoint, kept after the key is rotated.
    await conn.execute(
        """CREATE TABLE audit_key (
            key_id      TEXT PRIMARY KEY,
            public_jwk  TEXT NOT NULL,
            first_used  BIGINT NOT NULL
        )"""
    )
    await _chain_existing_rows(conn)


async def _chain_existing_rows(conn: Connection) -> None:
    """Rows of an older database join the chain in id order, so old logs verify too."""
    previous, after = GENESIS, -1
    while True:
        rows = await conn.fetch(
            "SELECT id, ts, team_id, actor, action, target, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
            after,
            BATCH,
        )
        if not rows:
            return
        for row in rows:
            detail = json.loads(row["detail"]) if row["detail"] is not None else None
            digest = row_hash(
                row["id"], row["ts"], row["team_id"], row["actor"], row["action"], row["target"], detail, previous
            )
            await conn.execute("UPDATE audit_log SET prev_hash=$1, hash=$2 WHERE id=$3", previous, digest, row["id"])
            previous, after = digest, row["id"]
