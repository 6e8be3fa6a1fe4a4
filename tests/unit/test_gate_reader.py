"""The gate's own SQLite read connection (db/gate.py): which databases get one, and that it
reads what another connection committed while that connection holds a write open."""

from __future__ import annotations

import sqlite3

import pytest

from clutto_bridge.db.gate import SQLiteReader, create_reader


@pytest.mark.parametrize(
    "url, path",
    [
        ("sqlite:clutto.db", "clutto.db"),
        ("sqlite:/var/lib/clutto/clutto.db", "/var/lib/clutto/clutto.db"),
        ("sqlite3:x.db", "x.db"),
        ("sqlite::memory:", None),
        ("postgres://clutto@127.0.0.1/clutto", None),
    ],
)
def test_only_an_sqlite_file_gets_a_reader(url: str, path: str | None) -> None:
    reader = create_reader(url)
    assert (reader.path if reader else None) == path


def test_reader_sees_commits_and_does_not_wait_for_an_open_write(tmp_path) -> None:
    path = tmp_path / "x.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    writer.execute("INSERT INTO t VALUES ('a', 'one')")
    reader = SQLiteReader(str(path))
    try:
        assert reader.fetchrow("SELECT v FROM t WHERE k=$1", "a")["v"] == "one"
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE t SET v='two' WHERE k='a'")
        # The write is open: the reader answers at once, with the last commit.
        assert reader.fetchrow("SELECT v FROM t WHERE k=$1", "a")["v"] == "one"
        writer.execute("COMMIT")
        assert reader.fetchrow("SELECT v FROM t WHERE k=$1 AND v=$2", "a", "two")["v"] == "two"
        assert reader.fetchrow("SELECT v FROM t WHERE k=$1", "b") is None
    finally:
        reader.close()
        writer.close()
