"""Reads that don't queue behind writes on the embedded SQLite database.

mautrix's SQLite database is one aiosqlite connection: every query of every request waits its
turn behind whatever the bridge is writing (a retention sweep, an import, the inbox). PostgreSQL
has no such queue (asyncpg's pool reads in parallel). ``ReadingSQLiteDatabase`` keeps that one
connection for writes, in their order, and adds read-only connections for plain ``SELECT``
statements: in WAL mode (mautrix's default) each reads the last committed state while the
writer writes. A statement inside a transaction, or inside ``acquire()``, stays on the
transaction's connection, so a task always reads what it has written.

Its ``stop`` returns only once every connection's thread has ended: aiosqlite hands the
result of a connection's close back to the event loop before its thread logs it and exits,
so a stopped bridge's database could still log into a test's (or a process's) closed log
stream ("--- Logging error ---").
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mautrix.util.async_db import Database
from mautrix.util.async_db.aiosqlite import SQLiteDatabase, TxnConnection
from mautrix.util.async_db.connection import LoggingConnection
from mautrix.util.async_db.database import conn_var
from yarl import URL

# Each reader refuses writes, and waits (rather than failing) through a WAL checkpoint.
READER_PRAGMAS = ("PRAGMA query_only = ON", "PRAGMA busy_timeout = 5000")


def is_plain_select(query: str) -> bool:
    """Only a ``SELECT`` goes to a reader; ``DELETE … RETURNING`` and the like are writes."""
    return query.lstrip()[:6].upper() == "SELECT"


class ReadingSQLiteDatabase(SQLiteDatabase):
    """mautrix's SQLite database, plus ``readers`` read-only connections for plain SELECTs."""

    def __init__(self, url: URL, *, readers: int, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._reader_count = readers
        self._readers: asyncio.Queue[TxnConnection] = asyncio.Queue(readers)
        self._reading = False
        self._opened = 0
        self._threads: list[threading.Thread] = []

    async def start(self) -> None:
        await super().start()  # the writer first: it sets WAL mode and applies the upgrades
        if not self._parent:  # the pool's own connections, all in its queue right after start
            writers = [self._pool.get_nowait() for _ in range(self._pool.qsize())]
            for conn in writers:
                self._pool.put_nowait(conn)
            self._threads += [_thread_of(conn) for conn in writers]
        for _ in range(self._reader_count):
            conn = TxnConnection(self._path, **self._db_args)
            self._threads.append(_thread_of(conn))
            await conn  # opens it in its own thread, as mautrix's pool does
            for pragma in READER_PRAGMAS:
                await conn.execute(pragma)
            conn.row_factory = sqlite3.Row
            self._readers.put_nowait(conn)
            self._opened += 1
        self._reading = self._reader_count > 0

    async def stop(self) -> None:
        self._reading = False
        while self._opened:  # waits for a reader still answering a query to come back
            await (await self._readers.get()).close()
            self._opened -= 1
        await super().stop()
        threads, self._threads = self._threads, []
        await asyncio.to_thread(_join, threads)

    def _reads_apart(self, query: str) -> bool:
        return self._reading and conn_var.get(None) is None and is_plain_select(query)

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[LoggingConnection]:
        conn = await self._readers.get()
        try:
            yield LoggingConnection(self.scheme, conn, self.log)
        finally:
            self._readers.put_nowait(conn)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[Any]:
        if not self._reads_apart(query):
            return await super().fetch(query, *args, timeout=timeout)
        async with self._reader() as conn:
            return await conn.fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:
        if not self._reads_apart(query):
            return await super().fetchrow(query, *args, timeout=timeout)
        async with self._reader() as conn:
            return await conn.fetchrow(query, *args, timeout=timeout)

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        if not self._reads_apart(query):
            return await super().fetchval(query, *args, column=column, timeout=timeout)
        async with self._reader() as conn:
            return await conn.fetchval(query, *args, column=column, timeout=timeout)


def _thread_of(conn: TxnConnection) -> threading.Thread:
    """The thread an aiosqlite connection runs its statements in (aiosqlite keeps it as ``_thread``)."""
    return conn._thread


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        if thread.ident is not None:  # started (a connection that failed to open may never be)
            thread.join()


def sqlite_file_path(url: str) -> str | None:
    """The file of an SQLite URL, as mautrix reads it; None for PostgreSQL and for an in-memory
    database (where a second connection would be another database)."""
    parsed = URL(url)
    path = parsed.path
    if parsed.scheme not in ("sqlite", "sqlite3") or not path or ":memory:" in path or "mode=memory" in url:
        return None
    return path


def create_sqlite_with_readers(url: str, readers: int, db_args: Mapping[str, Any], **kwargs: Any) -> Database:
    """As ``Database.create`` does for an SQLite URL, with ``readers`` read connections."""
    return ReadingSQLiteDatabase(URL(url), readers=readers, db_args=dict(db_args), **kwargs)
