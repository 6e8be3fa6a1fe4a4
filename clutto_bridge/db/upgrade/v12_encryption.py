from mautrix.util.async_db import Connection, Scheme

from clutto_bridge.db.encrypted import encrypt_plaintext, plaintext_rows
from clutto_bridge.db.upgrade import upgrade_cipher, upgrade_table


# index=11 is v12: versions 10 and 11 are other work's numbers.
@upgrade_table.register(index=11, description="Encrypted personal data: emails, profiles, contacts, pending events")
async def upgrade_v12(conn: Connection, scheme: Scheme) -> None:
    # A keyed HMAC of the email next to its ciphertext, for finding an account by email.
    await conn.execute("ALTER TABLE account ADD COLUMN email_index TEXT")
    await conn.execute("CREATE INDEX account_email_index ON account (email_index)")
    # mautrix's state store cached members' display names and avatars in plaintext; the
    # bridge keeps only memberships there now (matrix/state_store.py).
    if await _table_exists(conn, scheme, "mx_user_profile"):
        await conn.execute("UPDATE mx_user_profile SET displayname=NULL, avatar_url=NULL")
    if not await plaintext_rows(conn):
        return
    cipher = upgrade_cipher()
    if cipher is None:
        raise RuntimeError("upgrade v12 encrypts existing personal data and needs the keyset (security.keyset)")
    await encrypt_plaintext(conn, cipher)


async def _table_exists(conn: Connection, scheme: Scheme, name: str) -> bool:
    if scheme == Scheme.SQLITE:
        found = await conn.fetchval("SELECT 1 FROM sqlite_master WHERE type='table' AND name=$1", name)
    else:
        found = await conn.fetchval(
            "SELECT 1 FROM information_schema.tables WHERE table_schema=current_schema() AND table_name=$1", name
        )
    return found is not None
