"""P14: what the bridge did and disclosed is recorded in a hash-chained, signed audit log, and
`clutto-bridge audit verify` names the row someone changed directly in the database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mautrix.util.async_db import Database, UpgradeTable

from clutto_bridge.app import Bridge
from clutto_bridge.clock import SystemClock
from clutto_bridge.config import sqlite_file
from clutto_bridge.crypto.chain import ChainCheck
from clutto_bridge.crypto.signing import key_id, load_signing_key
from clutto_bridge.db import create_database
from clutto_bridge.db.audit import AuditRow, AuditStore
from clutto_bridge.db.upgrade import upgrade_table
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.policy.audit_actions import AuditAction
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import Api, openid_api, post_file, team_with_member, vcards
from tests.integration.matrix_client import wait_until


def audit_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clutto_bridge", "audit", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


async def verify(config: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(audit_cli, "verify", "-c", str(config))


async def sql(database: str, *statements: str) -> None:
    """Change the bridge's database behind its back, as someone with database access could."""
    path = sqlite_file(database)
    if path is not None:
        with sqlite3.connect(path) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    conn = await asyncpg.connect(database)
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


async def some_work(bridge: Bridge, new_user) -> None:
    """What a team's first days write to the log: creation, members, roles, rooms, retention."""
    owner, member, team, _ = await team_with_member(bridge, new_user)
    await bridge.members.change_role(team, member.user_id, "admin", actor=owner.user_id)
    await bridge.retention.set_lifetime(team, "30d", actor=owner.user_id)
    await bridge.retention.place_hold(team, None, "audit", actor=None)
    await bridge.retention.lift_hold(team, None, actor=None)


async def rows_of(bridge: Bridge) -> list[AuditRow]:
    return await bridge.stores.audit.rows_after(0, 10_000)


@pytest.mark.promise("P14")
async def test_audit_verify_names_the_row_that_was_edited_reordered_or_deleted(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start(bridges.settings(audit__checkpoint_rows=3))
    await some_work(bridge, new_user)
    rows = await rows_of(bridge)
    assert {"member_invited", "role_changed", "retention_set", "hold_placed", "hold_lifted"} <= {r.action for r in rows}
    await bridges.stop(bridge)  # signs the rows after the last checkpoint
    config = bridges.folder / "config.yaml"

    valid = await verify(config)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert f"{len(rows)} rows up to row {rows[-1].id}, chained without a break" in valid.stdout
    assert "the configured key" in valid.stdout and "not signed yet" not in valid.stdout

    middle = rows[len(rows) // 2]
    await sql(bridges.database, f"UPDATE audit_log SET target = '@mallory:evil' WHERE id = {middle.id}")
    edited = await verify(config)
    assert edited.returncode == 1 and f"row {middle.id}: edited" in edited.stdout, edited.stdout
    await sql(bridges.database, f"UPDATE audit_log SET target = '{middle.target}' WHERE id = {middle.id}")
    assert (await verify(config)).returncode == 0

    a, b = middle.id, rows[len(rows) // 2 + 1].id
    swap = [
        f"UPDATE audit_log SET id = -1 WHERE id = {a}",
        f"UPDATE audit_log SET id = {a} WHERE id = {b}",
        f"UPDATE audit_log SET id = {b} WHERE id = -1",
    ]
    await sql(bridges.database, *swap)
    reordered = await verify(config)
    assert reordered.returncode == 1 and f"row {a}: changed or moved" in reordered.stdout, reordered.stdout
    await sql(bridges.database, *swap)

    await sql(bridges.database, f"DELETE FROM audit_log WHERE id = {middle.id}")
    deleted = await verify(config)
    assert deleted.returncode == 1 and f"row {middle.id} is missing (deleted)" in deleted.stdout, deleted.stdout


@pytest.mark.promise("P14")
async def test_the_log_verifies_after_key_rotation_and_an_export_verifies_offline(
    bridges: Bridges, new_user, tmp_path: Path
) -> None:
    bridge = await bridges.start()
    await some_work(bridge, new_user)
    await bridges.stop(bridge)
    key_file = bridge.settings.signing_key_path
    old_key = key_id(load_signing_key(key_file).public_key())
    key_file.rename(key_file.with_name("retired-signing-key.pem"))  # rotation: the operator moves the key away

    bridge = await bridges.start()
    new_key = key_id(load_signing_key(key_file).public_key())
    assert new_key != old_key
    await some_work(bridge, new_user)
    await bridges.stop(bridge)
    config = bridges.folder / "config.yaml"
    rotated = await verify(config)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert f"{old_key} (1)" in rotated.stdout and f"{new_key} (1, the configured key)" in rotated.stdout

    export = tmp_path / "audit.jsonl"
    written = await asyncio.to_thread(audit_cli, "export", str(export), "-c", str(config))
    assert written.returncode == 0, written.stderr
    assert export.stat().st_mode & 0o777 == 0o600
    offline = await asyncio.to_thread(audit_cli, "verify", "--file", str(export))
    assert offline.returncode == 0 and "chained without a break" in offline.stdout, offline.stdout
    assert old_key in offline.stdout and new_key in offline.stdout

    lines = export.read_bytes().splitlines(keepends=True)
    number, line = next((i, row) for i, row in enumerate(lines) if b'"action": "role_changed"' in row)
    row_id = json.loads(line)["id"]
    lines[number] = line.replace(b"role_changed", b"role_chanced")  # one byte
    export.write_bytes(b"".join(lines))
    changed = await asyncio.to_thread(audit_cli, "verify", "--file", str(export))
    assert changed.returncode == 1 and f"row {row_id}: edited" in changed.stdout, changed.stdout

    trusted = tmp_path / "trusted.json"
    trusted.write_text(
        json.dumps({"keys": [json.loads(row)["public_jwk"] for row in lines if b'"type": "key"' in row][1:]})
    )
    lines[number] = line
    export.write_bytes(b"".join(lines))
    narrowed = await asyncio.to_thread(audit_cli, "verify", "--file", str(export), "--trusted-keys", str(trusted))
    assert narrowed.returncode == 1 and "not among the trusted keys" in narrowed.stdout, narrowed.stdout


@pytest.mark.promise("P14")
async def test_a_checkpoint_is_signed_on_the_timer_while_the_bridge_runs(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start(bridges.settings(audit__checkpoint_interval="1s"))
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Timed"), owner=owner.user_id)
    await bridge.retention.set_lifetime(team, "30d", actor=owner.user_id)
    head = (await rows_of(bridge))[-1].id

    async def signed() -> bool:
        return (await bridge.stores.audit.last_signed_row() or 0) >= head

    await wait_until(signed, what=f"a checkpoint covering row {head}")  # far fewer than checkpoint_rows rows


@pytest.mark.promise("P14")
async def test_disclosures_are_recorded(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    owner, member, team, _ = await team_with_member(bridge, new_user)
    operator = Api(bridge, http)
    who = quote(member.user_id)
    assert (await operator.call("GET", f"/users/{who}/data"))[0] == 200
    assert (await operator.call("GET", f"/users/{who}/consent"))[0] == 200
    assert (await operator.call("GET", f"/users/{who}/profile"))[0] == 200
    as_owner = await openid_api(bridge, http, owner)
    assert (await as_owner.call("GET", f"/teams/{team.id}/consent"))[0] == 200
    assert (await as_owner.call("POST", f"/teams/{team.id}/exports"))[0] == 202
    as_member = await openid_api(bridge, http, member)
    assert (await as_member.call("PUT", f"/users/{who}/contacts/permission"))[0] == 200
    status, report = await post_file(
        as_member, f"/users/{who}/contacts", vcards(("Owner", f"IMPP:matrix:u/{owner.user_id[1:]}"))
    )
    assert status == 201 and report["matched"] == [owner.user_id]
    assert (await as_member.call("GET", f"/users/{who}/data"))[0] == 200  # the member's own: not a disclosure

    recorded = [(r.actor, r.action, r.target, r.detail) for r in await rows_of(bridge)]
    assert (None, "member_data_read", member.user_id, {"part": "all"}) in recorded
    assert (None, "member_data_read", member.user_id, {"part": "consent"}) in recorded
    assert (None, "member_data_read", member.user_id, {"part": "profile"}) in recorded
    assert (owner.user_id, "team_consent_read", team.id, {"members": 2}) in recorded
    assert any(r[:3] == (owner.user_id, "export_requested", team.id) for r in recorded)
    assert (member.user_id, "contacts_matched", member.user_id, {"matched": [owner.user_id]}) in recorded
    assert not any(r[0] == member.user_id and r[1] == "member_data_read" for r in recorded)


@pytest.mark.promise("P14")
async def test_two_writers_on_one_database_form_one_chain(database_url: str) -> None:
    """Like the main process and a worker: separate connection pools appending at once."""
    pools = [create_database(database_url), create_database(database_url)]
    for db in pools:
        await db.start()
    try:
        key = Ed25519PrivateKey.generate()  # both sign with the configured key, every 10 rows
        logs = [
            AuditLog(store=AuditStore(db), clock=SystemClock(), signing_key=key, checkpoint_rows=10) for db in pools
        ]
        await asyncio.gather(
            *(log.record(None, None, AuditAction.MEMBER_INVITED, unique("row")) for log in logs for _ in range(25))
        )
        store = logs[0].store
        rows, checkpoints = await store.rows_after(0, 1000), await store.checkpoints()
        assert len(rows) == 50 and len(checkpoints) >= 4
        check = ChainCheck(checkpoints, {k.key_id: k.public_jwk for k in await store.keys()})
        assert [check.add(row) for row in rows] == [None] * 50 and check.finish() is None
        assert check.summary.checkpoints == len(checkpoints)
    finally:
        for db in pools:
            await db.stop()


@pytest.mark.promise("P14")
async def test_rows_of_an_older_database_are_chained_by_the_upgrade(database_url: str) -> None:
    """A log written before the chain existed (schema v9) verifies after the upgrade, in id order."""
    old_schema = UpgradeTable(version_table_name="clutto_version", database_name="clutto-bridge")
    old_schema.upgrades = upgrade_table.upgrades[:9]
    old = Database.create(database_url, upgrade_table=old_schema)
    await old.start()
    for n in range(5):
        await old.execute(
            "INSERT INTO audit_log (ts, team_id, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            1000 + n,
            None,
            None,
            "member_removed",
            f"@old{n}:x",
            json.dumps({"n": n}) if n != 2 else None,
        )
    await old.stop()

    db = create_database(database_url)
    await db.start()
    try:
        log = AuditLog(store=AuditStore(db), clock=SystemClock())
        await log.record(None, None, AuditAction.MEMBER_INVITED, "@new:x")
        rows = await log.store.rows_after(0, 100)
        check = ChainCheck([], {})
        assert [r.target for r in rows] == [f"@old{n}:x" for n in range(5)] + ["@new:x"]
        assert [check.add(row) for row in rows] == [None] * 6 and check.finish() is None
    finally:
        await db.stop()


async def record_up_to(bridge: Bridge, last_row: int) -> None:
    """Rows until the log's newest row is ``last_row`` (what months of work would write)."""
    head = (await rows_of(bridge))[-1].id if await bridge.stores.audit.count() else 0
    for n in range(head + 1, last_row + 1):
        await bridge.audit.record(None, None, AuditAction.MEMBER_REMOVED, f"@gone{n}:example.org")


@pytest.mark.promise("P14")
async def test_rows_deleted_from_the_end_with_their_checkpoints_are_caught_by_the_witness(
    bridges: Bridges, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = await bridges.start(bridges.settings(audit__checkpoint_rows=100))
    await record_up_to(bridge, 803)
    checkpoints = await bridge.stores.audit.checkpoints()
    assert [c.row_id for c in checkpoints] == [100, 200, 300, 400, 500, 600, 700, 800]
    await bridges.stop(bridge)  # signs rows 801-803: checkpoint 9
    witness = bridge.settings.witness_path
    assert witness.parent == bridge.settings.keyset_path.parent and witness.stat().st_mode & 0o777 == 0o600
    held = json.loads(witness.read_text())
    assert held["counter"] == 9 and held["checkpoint"]["row_id"] == 803
    config = bridges.folder / "config.yaml"
    valid = await verify(config)
    assert valid.returncode == 0 and "holds checkpoint 9 over row 803" in valid.stdout, valid.stdout + valid.stderr
    export = tmp_path / "audit.jsonl"
    assert (await asyncio.to_thread(audit_cli, "export", str(export), "-c", str(config))).returncode == 0

    # Someone with database access cuts the end off, checkpoints included.
    await sql(
        bridges.database, "DELETE FROM audit_log WHERE id > 500", "DELETE FROM audit_checkpoint WHERE row_id > 500"
    )
    cut = await verify(config)
    assert cut.returncode == 1, cut.stdout
    assert cut.stdout.strip() == (
        "The audit log does not verify: checkpoint 9 (rows up to 803) is missing: the log was truncated after row 500"
    )
    # A later export of the cut log carries the witness; an earlier one verifies against it.
    cut_export = tmp_path / "cut.jsonl"
    assert (await asyncio.to_thread(audit_cli, "export", str(cut_export), "-c", str(config))).returncode == 0
    offline = await asyncio.to_thread(audit_cli, "verify", "--file", str(cut_export))
    assert offline.returncode == 1 and "the log was truncated after row 500" in offline.stdout, offline.stdout
    earlier = await asyncio.to_thread(audit_cli, "verify", "--file", str(export), "--witness", str(witness))
    assert earlier.returncode == 0 and "holds checkpoint 9 over row 803" in earlier.stdout, earlier.stdout

    # The bridge runs on: it writes rows 501.. again, but never moves the witness past the cut.
    bridge = await bridges.start(bridges.settings(audit__checkpoint_rows=100))
    await record_up_to(bridge, 850)
    await bridges.stop(bridge)
    assert json.loads(witness.read_text()) == held
    refusals = [r.getMessage() for r in caplog.records if "is not updated" in r.getMessage()]
    assert len(refusals) == 1 and "the log no longer holds row 803 as checkpoint 9 signed it" in refusals[0]
    rebuilt = await verify(config)
    # SQLite hands out ids 501.. again (the new row 803 has another hash), PostgreSQL 804..
    assert rebuilt.returncode == 1 and "row 803" in rebuilt.stdout, rebuilt.stdout
    assert (
        "the witness holds checkpoint 9" in rebuilt.stdout
        or "differs from the one the witness holds (checkpoint 9)" in rebuilt.stdout
    )

    await sql(bridges.database, "DELETE FROM audit_log", "DELETE FROM audit_checkpoint")
    emptied = await verify(config)
    assert emptied.returncode == 1, emptied.stdout
    assert "checkpoint 9 (rows up to 803) is missing: the log was emptied" in emptied.stdout

    witness.unlink()  # the operator's choice after a restore on purpose: checked again from here on
    fresh = await verify(config)
    assert fresh.returncode == 0 and "The audit log is empty." in fresh.stdout and "No witness" in fresh.stdout
