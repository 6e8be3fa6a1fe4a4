"""The SQLite database's read connections (db/reads.py): which statements they answer, that a
read does not wait for an open write, that a task reads its own writes, and that nothing is
written through a reader."""

from __future__ import annotations

import asyncio
import threading

import pytest
from mautrix.util.async_db import UpgradeTable
from yarl import URL

from clutto_bridge.db import create_database
from clutto_bridge.db.connection import transaction
from clutto_bridge.db.reads import ReadingSQLiteDatabase, is_plain_select, sqlite_file_path


@pytest.mark.parametrize(
    "query, apart",
    [
        ("SELECT 1", True),
        ("  select v FROM t", True),
        ("\n SELECT v FROM t WHERE k=$1", True),
        ("DELETE FROM t WHERE k=$1 RETURNING k", False),
        ("INSERT INTO t VALUES ($1, $2) RETURNING k", False),
        ("UPDATE t SET v=$1 RETURNING v", False),
        ("WITH x AS (DELETE FROM t RETURNING k) SELECT * FROM x", False),
    ],
)
def test_only_plain_selects_go_to_a_reader(query: str, apart: bool) -> None:
    assert is_plain_select(query) is apart


@pytest.mark.parametrize(
    "url, path",
    [
        ("sqlite:clutto.db", "clutto.db"),
        ("sqlite::memory:", None),
        ("postgres://clutto@127.0.0.1/clutto", None),
    ],
)
def test_only_an_sqlite_file_gets_readers(url: str, path: str | None) -> None:
    """A file can be opened again read-only; memory (another database per connection) and PostgreSQL not."""
    assert sqlite_file_path(url) == path


async def _database(path, readers: int = 2) -> ReadingSQLiteDatabase:
    db = ReadingSQLiteDatabase(URL(f"sqlite:{path}"), readers=readers, upgrade_table=UpgradeTable())
    await db.start()
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    await db.execute("INSERT INTO t VALUES ('a', 'one')")
    return db


async def test_a_read_answers_while_a_write_is_open_and_then_sees_its_commit(tmp_path) -> None:
    db = await _database(tmp_path / "x.db")
    holding, release = asyncio.Event(), asyncio.Event()

    async def long_write() -> None:
        async with transaction(db) as conn:
            await conn.execute("UPDATE t SET v='two' WHERE k='a'")
            holding.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    try:
        await asyncio.wait_for(holding.wait(), 10)
        # The writer's one connection is busy until `release`: the read must not wait for it.
        assert await asyncio.wait_for(db.fetchval("SELECT v FROM t WHERE k=$1", "a"), 10) == "one"
        release.set()
        await asyncio.wait_for(writer, 10)
        assert await db.fetchval("SELECT v FROM t WHERE k=$1", "a") == "two"
    finally:
        release.set()
        await db.stop()


async def test_a_transaction_reads_its_own_writes_and_returning_statements_write(tmp_path) -> None:
    db = await _database(tmp_path / "x.db")
    try:
        async with transaction(db):
            await db.execute("INSERT INTO t VALUES ('b', 'new')")
            # Inside the transaction the SELECT stays on the writer, which sees the insert.
            assert await db.fetchval("SELECT v FROM t WHERE k=$1", "b") == "new"
        assert [r["k"] for r in await db.fetch("DELETE FROM t WHERE k=$1 RETURNING k", "b")] == ["b"]
        assert await db.fetchrow("SELECT v FROM t WHERE k=$1", "b") is None
    finally:
        await db.stop()


async def test_no_readers_means_one_connection_for_all(tmp_path) -> None:
    db = await _database(tmp_path / "x.db", readers=0)
    try:
        assert await db.fetchval("SELECT v FROM t WHERE k=$1", "a") == "one"
    finally:
        await db.stop()


@pytest.mark.parametrize("readers", [0, 2])
async def test_stop_returns_once_every_connection_thread_has_ended(tmp_path, readers: int) -> None:
    """aiosqlite hands a close's result back to the loop before its thread logs it and ends: a
    bridge's database still logging after its stop wrote into a finished test's closed stream
    ("--- Logging error ---"). Several rounds, as the thread is usually only a moment late."""
    for round_ in range(5):
        before = set(threading.enumerate())
        db = create_database(f"sqlite:{tmp_path / f'{round_}.db'}", readers=readers)
        await db.start()
        await db.fetchval("SELECT 1")
        ours = [t for t in threading.enumerate() if t not in before]
        assert len(ours) == 1 + readers  # the writer's and each reader's
        await db.stop()
        assert [t.name for t in ours if t.is_alive()] == []
