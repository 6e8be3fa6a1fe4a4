"""The pickles of the bot's E2EE device in mautrix's crypto tables, as opaque bytes.

mautrix's crypto store (``crypto_*`` tables, upgraded by its own table ``crypto_version``)
pickles the Olm account and the Olm and Megolm sessions with one pickle key. The bridge
derives that key from a keyset key and records which one here (``crypto_pickle_key``), so
that after ``keys rotate`` every pickle is rewritten under the new primary key in one
transaction, and ``keys retire`` refuses the key while a pickle needs it.
"""

from __future__ import annotations

from collections.abc import Callable

from mautrix.util.async_db import Database

from clutto_bridge.db.connection import transaction

# (table, pickled column, row key columns); every table has account_id in its key.
PICKLED = (
    ("crypto_account", "account", ("account_id",)),
    ("crypto_olm_session", "session", ("account_id", "session_id")),
    ("crypto_megolm_inbound_session", "session", ("account_id", "session_id")),
    ("crypto_megolm_outbound_session", "session", ("account_id", "room_id")),
)


class CryptoPickles:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def key_id(self, account_id: str) -> int | None:
        """The keyset key the account's pickles are under; None before the first start."""
        return await self.db.fetchval("SELECT key_id FROM crypto_pickle_key WHERE account_id=$1", account_id)

    async def key_ids(self) -> set[int]:
        return {row["key_id"] for row in await self.db.fetch("SELECT key_id FROM crypto_pickle_key")}

    async def repickle(self, account_id: str, key_id: int, convert: Callable[[str, bytes], bytes]) -> int:
        """Rewrite every pickle of the account with ``convert(table, old)`` and record ``key_id``,
        all in one transaction (a crash leaves the old key and the old pickles together).
        Returns how many pickles were rewritten. The caller makes sure nothing else writes them."""
        count = 0
        async with transaction(self.db) as conn:
            for table, column, keys in PICKLED:
                key_list = ", ".join(keys)
                rows = await conn.fetch(
                    f"SELECT {key_list}, {column} AS pickle FROM {table} WHERE account_id=$1 AND {column} IS NOT NULL",
                    account_id,
                )
                where = " AND ".join(f"{k}=${i + 2}" for i, k in enumerate(keys))
                for row in rows:
                    new = convert(table, bytes(row["pickle"]))
                    await conn.execute(f"UPDATE {table} SET {column}=$1 WHERE {where}", new, *(row[k] for k in keys))
                    count += 1
            await conn.execute(
                "INSERT INTO crypto_pickle_key (account_id, key_id) VALUES ($1, $2) "
                "ON CONFLICT (account_id) DO UPDATE SET key_id=excluded.key_id",
                account_id,
                key_id,
            )
        return count
