"""Personal data is encrypted in the bridge database (P12, P3), read from the raw database:
the SQLite file's bytes, or every row of every table on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.util.async_db import Database, UpgradeTable

from clutto_bridge import cli, testhooks
from clutto_bridge.config import ConfigError, sqlite_file
from clutto_bridge.crypto import DecryptionError, FieldCipher, KeysetFile
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.account import Account
from clutto_bridge.db.contacts import StoredContact
from clutto_bridge.db.encrypted import ENCRYPTED
from clutto_bridge.db.job import JobKind
from clutto_bridge.db.upgrade import upgrade_table
from tests.integration.conftest import Bridges
from tests.integration.helpers import bot_chat, send_vcard, team_with_member, vcards
from tests.integration.matrix_client import wait_until


async def raw_database(url: str) -> bytes:
    """Everything the database holds, as an attacker with the files or a SQL login reads it."""
    path = sqlite_file(url)
    if path is not None:
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema=current_schema()"
            )
        ]
        dump = [str(await conn.fetch(f'SELECT t::text FROM "{table}" t')) for table in tables]
    finally:
        await conn.close()
    return "\n".join(dump).encode()


@pytest.mark.promise("P12", "P3")
async def test_emails_profiles_and_contacts_are_ciphertext_in_the_database(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    owner, member, team, _ = await team_with_member(bridge, new_user)
    canary = secrets.token_hex(4)
    email = f"quill-{canary}@example.org"
    created = await bridge.members.create_account(team, f"quill-{canary}", email, "s3cret-pass", actor=owner.user_id)
    dm = await bot_chat(bridge, member)
    first, title = f"Zelda{canary}", f"Archivist{canary}"
    for command, reply in (
        (f"profile set first_name {first}", "Profile updated"),
        (f"profile set designation {title}", "Profile updated"),
        ("contacts allow", "Contact import is allowed"),
    ):
        await member.send_text(dm, command)
        await member.wait_for_notice(dm, reply, sender=bot)
    contact_name, contact_email = f"Yorick{canary}", f"yorick-{canary}@example.net"
    await send_vcard(member, dm, vcards((contact_name, f"EMAIL:{contact_email}"), ("Quill", f"EMAIL:{email}")))
    reply = await member.wait_for_notice(dm, "Imported 2 contact(s)", sender=bot)
    assert created.user_id in reply["content"]["body"]  # matched by the email's keyed index

    # The bridge reads it all back...
    assert (await bridge.stores.accounts.get(created.user_id)).email == email
    assert (await bridge.stores.profiles.get(member.user_id))["first_name"] == first
    assert [c.card["name"] for c in await bridge.stores.contacts.of_owner(member.user_id)] == [contact_name, "Quill"]
    # ...the database holds none of it in plaintext (the homeserver publishes the display name;
    # mautrix's cache of it in our database is empty).
    await bridges.stop(bridge)
    raw = await raw_database(bridges.database)
    for secret in (email, first, title, contact_name, contact_email):
        assert secret.encode() not in raw, secret
    assert b"enc1:" in raw

    # A ciphertext copied into another row does not decrypt: refused, not misread.
    bridge = await bridges.start()
    sealed = await bridge.db.fetchval("SELECT email FROM account WHERE user_id=$1", created.user_id)
    await bridge.db.execute("UPDATE profile SET first_name=$1 WHERE user_id=$2", sealed, member.user_id)
    with pytest.raises(DecryptionError, match="profile.first_name"):
        await bridge.stores.profiles.get(member.user_id)


async def test_upgrade_encrypts_what_an_older_version_kept_in_plaintext(database_url: str, tmp_path: Path) -> None:
    # A database as version 11 left it: emails, profiles, contacts and cached display names in plaintext.
    older = UpgradeTable(version_table_name="clutto_version", database_name="clutto-bridge")
    older.upgrades = upgrade_table.upgrades[:11]
    db = Database.create(database_url, upgrade_table=older)
    await db.start()
    state = Database.create(database_url, upgrade_table=PgASStateStore.upgrade_table)
    state.override_pool(db)
    await state.start()
    await db.execute("INSERT INTO account (user_id, email, created_at) VALUES ('@old:x', 'Old@Example.org', 1)")
    await db.execute(
        "INSERT INTO profile (user_id, first_name, last_name, updated_at) VALUES ('@old:x', 'Olga', 'Oldfield', 1)"
    )
    await db.execute(
        'INSERT INTO contact (owner, card, imported_at) VALUES (\'@old:x\', \'{"name": "Ophelia", "emails": [], "matrix_ids": []}\', 1)'
    )
    await db.execute(
        "INSERT INTO mx_user_profile (room_id, user_id, membership, displayname) VALUES ('!r:x', '@old:x', 'join', 'Olga Oldfield')"
    )
    await db.stop()
    with pytest.raises(Exception, match="needs the keyset"):  # never upgraded without the keys
        await create_database(database_url).start()

    keys = KeysetFile(tmp_path / "keyset.json")
    keys.create(0)
    cipher = FieldCipher.from_file(keys.path)
    db = create_database(database_url, cipher=cipher)
    await db.start()
    try:
        stores = Stores.over(db, cipher)
        assert (await stores.accounts.get("@old:x")).email == "Old@Example.org"
        assert await stores.accounts.user_of_email("old@example.org") == "@old:x"
        assert (await stores.profiles.get("@old:x"))["last_name"] == "Oldfield"
        assert (await stores.contacts.of_owner("@old:x"))[0].card["name"] == "Ophelia"
        assert await db.fetchval("SELECT displayname FROM mx_user_profile") is None
        assert (await stores.encrypted.count_by_key()) == {cipher.primary: 4}
    finally:
        await db.stop()
    raw = await raw_database(database_url)
    for secret in (b"Old@Example.org", b"Olga", b"Oldfield", b"Ophelia"):
        assert secret not in raw, secret


async def _cli(*args: str) -> int:
    """The operator's command, in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(cli.main, list(args))


@pytest.mark.promise("P12")
async def test_rotation_killed_mid_way_resumes_and_ends_with_every_value_under_the_new_key(
    bridges: Bridges, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    keyset = tmp_path / "rotation-keyset.json"
    KeysetFile(keyset).create(0)
    settings = bridges.settings(security__keyset=str(keyset))
    config = str(bridges.folder / "config.yaml")
    bridge = await bridges.start(settings)
    old = bridge.cipher.primary
    for n in range(25):
        await bridge.stores.accounts.add(Account(f"@rot{n}:x", f"rot{n}@example.org", n))
    await bridge.stores.contacts.save("@rot0:x", [StoredContact({"name": f"C{n}"}, None, n) for n in range(15)], [])
    await bridges.stop(bridge)

    assert await _cli("keys", "rotate", "-c", config, "--batch", "10") == 0
    new = KeysetFile(keyset).load().primary
    assert new != old
    # The bridge, as its own process, dies (as kill -9 would) after two batches.
    log = bridges.folder / "rotation.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "-c", config],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "CLUTTO_TEST_EXIT_AFTER_REENCRYPT_BATCH": "batch 2", "PYTHONUNBUFFERED": "1"},
    )
    code = await asyncio.to_thread(process.wait, 90)
    assert code == testhooks.EXIT_CODE, log.read_text()[-3000:]

    cipher = FieldCipher.from_file(keyset)
    db = create_database(settings.appservice.database, cipher=cipher)
    await db.start()
    try:
        counts = await Stores.over(db, cipher).encrypted.count_by_key()
    finally:
        await db.stop()
    assert counts[new] == 20 and counts[old] == 20, counts  # two batches of ten done, the rest not
    capsys.readouterr()
    assert await _cli("keys", "status", "-c", config) == 0
    shown = capsys.readouterr().out
    assert f"key {new:<11} primary" in shown and f"key {old:<11} decrypt only" in shown
    columns = len(ENCRYPTED)  # every encrypted column is walked, whether it holds values or not
    assert shown.count("protects 20 value(s)") == 2 and f"0/{columns} columns, 20 values re-encrypted" in shown
    assert await _cli("keys", "retire", str(old), "-c", config) == 1  # refused: values still use it
    assert f"key {old} still protects 20 value(s)" in capsys.readouterr().err

    bridge = await bridges.start(settings)  # takes the dead process's job back and finishes it

    async def finished():
        job = (await bridge.stores.jobs.latest("", str(JobKind.REENCRYPT), 1))[0]
        return job if job.finished else None

    job = await wait_until(finished, 60, "the re-encryption to finish")
    assert str(job.state) == "done" and job.progress["left"] == 0, job.progress
    assert await bridge.stores.encrypted.count_by_key() == {new: 40, old: 0}
    assert (await bridge.stores.accounts.get("@rot24:x")).email == "rot24@example.org"
    await bridges.stop(bridge)
    assert await _cli("keys", "retire", str(old), "-c", config) == 0
    assert [k.id for k in KeysetFile(keyset).load().keys] == [new]


async def test_a_missing_or_open_keyset_stops_start_up_naming_the_file(
    bridges: Bridges, tmp_path: Path, capsys
) -> None:
    keyset = tmp_path / "absent.json"
    bridges.settings(security__keyset=str(keyset))
    config = str(bridges.folder / "config.yaml")
    assert await _cli("-c", config) == 2
    assert f"security.keyset: {keyset} does not exist" in capsys.readouterr().err
    KeysetFile(keyset).create(0)
    os.chmod(keyset, 0o640)
    assert await _cli("-c", config) == 2
    assert f"{keyset} is readable by group or others" in capsys.readouterr().err


@pytest.mark.promise("P12")
async def test_the_running_bridge_takes_up_a_rotation_without_a_restart(bridges: Bridges, tmp_path: Path) -> None:
    keyset = tmp_path / "live-keyset.json"
    KeysetFile(keyset).create(0)
    settings = bridges.settings(security__keyset=str(keyset))
    config = str(bridges.folder / "config.yaml")
    bridge = await bridges.start(settings)
    old = bridge.cipher.primary
    await bridge.stores.accounts.add(Account("@before:x", "before@example.org", 1))

    assert await _cli("keys", "rotate", "-c", config) == 0  # while the bridge runs
    new = KeysetFile(keyset).load().primary

    async def finished():
        jobs = await bridge.stores.jobs.latest("", str(JobKind.REENCRYPT), 1)
        return jobs and jobs[0].finished and jobs[0]

    job = await wait_until(finished, 30, "the running bridge to re-encrypt")
    assert str(job.state) == "done" and job.progress["primary"] == new
    # What it writes from now on is under the new key too, and the old key protects nothing.
    await bridge.stores.accounts.add(Account("@after:x", "after@example.org", 2))
    assert await bridge.stores.encrypted.count_by_key() == {new: 2, old: 0}
    assert (await bridge.stores.accounts.get("@before:x")).email == "before@example.org"


async def test_a_keyset_that_is_not_the_databases_stops_start_up_naming_it(bridges: Bridges, tmp_path: Path) -> None:
    first, other = tmp_path / "first.json", tmp_path / "other.json"
    KeysetFile(first).create(0)
    KeysetFile(other).create(0)
    bridge = await bridges.start(bridges.settings(security__keyset=str(first)))
    await bridge.stores.accounts.add(Account("@someone:x", "someone@example.org", 1))
    await bridges.stop(bridge)
    with pytest.raises(ConfigError) as refused:
        await bridges.start(bridges.settings(security__keyset=str(other)))
    assert refused.value.key == "security.keyset"
    assert f"{other} does not open the data in the database" in str(refused.value)
    assert "account.email" in str(refused.value)
