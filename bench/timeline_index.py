"""Benchmark: what the timeline index costs on the live path, and its size per million events.

The same appservice transactions (50 events each) go through the inbox into a team room
(indexed) and into a room that is no team's (not indexed), alternating batch by batch in the
same run on the same database; reported are events/s of both, their ratio, and the bytes the
index takes per million events (SQLite: pages of its table and indexes; PostgreSQL:
``pg_total_relation_size``).

    .venv/bin/python bench/timeline_index.py [--events 20000] [--database postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path

import asyncpg
from harness import ROOT  # noqa: F401  (puts the checkout on sys.path)

from clutto_bridge.crypto.cipher import FieldCipher
from clutto_bridge.crypto.keyset import Keyset
from clutto_bridge.db import Stores, create_database
from clutto_bridge.db.member import Member
from clutto_bridge.db.team import RoomKind, Team, TeamRoom

BATCH = 50
POSTGRES = os.environ.get("CLUTTO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def event(room_id: str, i: int) -> dict:
    return {
        "event_id": f"${secrets.token_urlsafe(32)}",
        "room_id": room_id,
        "type": "m.room.message",
        "sender": "@someone:example.org",
        "origin_server_ts": 1_700_000_000_000 + i,
        "content": {"msgtype": "m.text", "body": f"message {i} " + "x" * 80},
    }


async def index_bytes(db, scheme: str) -> int:
    if scheme == "postgres":
        return await db.fetchval(
            "SELECT pg_total_relation_size('timeline_event') + pg_total_relation_size('timeline_room')"
        )
    return await db.fetchval(
        "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('timeline_event', 'timeline_event_order', "
        "'timeline_event_age') OR name LIKE 'sqlite_autoindex_timeline_event%'"
    )


async def main(events: int, database: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-index-bench-"))
    if database == "postgres":
        name = f"clutto_index_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(POSTGRES)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:{folder / 'clutto.db'}"
    db = create_database(url)
    await db.start()
    try:
        stores = Stores.over(db, FieldCipher(Keyset.generate(0)))
        team = Team("tbench", "Bench", "@owner:example.org", None, "active", "trial", 0, 0, 0)
        await stores.teams.create(team, Member("tbench", "@owner:example.org", "owner", "join", False, 0))
        await stores.rooms.insert(TeamRoom("!team:example.org", "tbench", RoomKind.GROUP, "general", 0))
        timings = {"!team:example.org": 0.0, "!other:example.org": 0.0}
        for n in range(0, events, BATCH):
            for room_id in timings:
                batch = [event(room_id, n + i) for i in range(BATCH)]
                start = time.perf_counter()
                await stores.inbox.accept(secrets.token_hex(8), batch, 0)
                timings[room_id] += time.perf_counter() - start
        indexed = await db.fetchval("SELECT COUNT(*) FROM timeline_event")
        size = await index_bytes(db, "postgres" if database == "postgres" else "sqlite")
        with_index, without = events / timings["!team:example.org"], events / timings["!other:example.org"]
        print(f"database: {database}, events per room: {events}, indexed rows: {indexed}")
        print(f"inbox with the index:    {with_index:8.0f} events/s")
        print(f"inbox without the index: {without:8.0f} events/s")
        print(f"ratio with/without:      {with_index / without:.3f}")
        print(f"index size: {size / indexed * 1e6 / 2**20:.0f} MiB per million events ({size / indexed:.0f} bytes/row)")
    finally:
        await db.stop()
        if database == "postgres":
            await admin.execute(f'DROP DATABASE "{name}"')
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.events = 200
    asyncio.run(main(args.events, args.database))
