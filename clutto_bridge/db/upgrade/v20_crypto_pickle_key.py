from mautrix.util.async_db import Connection

from clutto_bridge.db.upgrade import upgrade_table


@upgrade_table.register(index=19, description="Which keyset key the bot's crypto store is pickled under")
async def upgrade_v20(conn: Connection) -> None:
    # mautrix's crypto tables (crypto_*, their own version table) hold the bot's Olm account and
    # sessions pickled with a key derived from one keyset key; this row names that key, so a
    # rotation can re-pickle them and `keys retire` can refuse the key while they need it.
    await conn.execute("CREATE TABLE crypto_pickle_key (account_id TEXT PRIMARY KEY, key_id BIGINT NOT NULL)")
