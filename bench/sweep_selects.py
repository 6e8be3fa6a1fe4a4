"""Benchmark: what a sweep's index reads cost as the window grows and the expired part stays.

A room holds 1,000 expired messages followed by W messages inside the window (W = 10,000,
then 10x and 100x that by default), filled through the same code the sweep's fill uses, in a
database of its own per W where another room's 1,000 rows come before and after it. For each
W the sweep's reads are timed (best of 5):

- **head**: ``TimelineIndex.head``, which finds the purge point and sums up what lies before it;
- **tail check**: ``first_expired_after`` from the purge point (nothing is out of a purge's
  reach here, the usual case), which reads the expired rows through the age index;
- **tail walk** (what the check spares): one ``expired_after`` page from the purge point,
  which walks the position index through the whole window when nothing lies there.

Each is reported in ms and as a ratio to the smallest window: a cost that follows the expired
events stays near 1 while the window grows 100-fold; one that follows the room grows with it.

    .venv/bin/python bench/sweep_selects.py [--window 10000] [--database postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from harness import POSTGRES, drop_synapse_databases, throwaway_database

from clutto_bridge.db import create_database
from clutto_bridge.db.timeline import TimelineIndex

EXPIRED = 1_000
CUTOFF = 1_700_000_000_000
PAGE = 10_000


def message(room_id: str, n: int, ts: int) -> dict:
    return {"event_id": f"$e{n}-{room_id}", "room_id": room_id, "origin_server_ts": ts, "type": "m.room.message"}


async def best_of(times: int, step) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        await step()
        best = min(best, time.perf_counter() - start)
    return best * 1000


async def fill(index: TimelineIndex, room_id: str, window: int) -> None:
    room = await index.room(room_id)
    events = [message(room_id, n, CUTOFF - 10**9 + n) for n in range(EXPIRED)]
    events += [message(room_id, EXPIRED + n, CUTOFF + n) for n in range(window)]
    for start in range(0, len(events), PAGE):
        last = start + PAGE >= len(events)
        await index.fill(room, events[start : start + PAGE], None if last else "more", finished=last)


async def timings(index: TimelineIndex, room_id: str) -> dict[str, float]:
    room = await index.room(room_id)
    facts = await index.head(room.id, 0, CUTOFF)
    assert facts.first_inside is not None and facts.rows == EXPIRED
    point = facts.first_inside[0]
    assert await index.first_expired_after(room.id, point, CUTOFF) is None
    return {
        "head": await best_of(5, lambda: index.head(room.id, 0, CUTOFF)),
        "tail check": await best_of(5, lambda: index.first_expired_after(room.id, point, CUTOFF)),
        "tail walk": await best_of(5, lambda: index.expired_after(room.id, point, CUTOFF, 500)),
    }


async def main(window: int, database: str) -> None:
    sizes = [window, window * 10, window * 100]
    results = {}
    try:
        for size in sizes:  # a database of its own per size, so no room skews another's plans
            if database == "postgres":
                url = POSTGRES.rsplit("/", 1)[0] + "/" + await throwaway_database("clutto_selects_bench")
            else:
                url = f"sqlite:{Path(tempfile.mkdtemp(prefix='clutto-selects-')) / 'clutto.db'}"
            db = create_database(url)
            await db.start()
            try:
                index = TimelineIndex(db)
                print(f"filling a room of {EXPIRED} expired + {size} window rows …", flush=True)
                await fill(index, "!other:bench", EXPIRED)  # another room's rows come first
                await fill(index, f"!w{size}:bench", size)
                await fill(index, "!later:bench", EXPIRED)  # and after
                if database == "postgres":
                    await db.execute("ANALYZE timeline_event")  # as autovacuum would after such a load
                results[size] = await timings(index, f"!w{size}:bench")
            finally:
                await db.stop()
        print(f"\n{database}: {EXPIRED} expired rows; ms (ratio to the {sizes[0]}-row window)")
        for step in ("head", "tail check", "tail walk"):
            base = results[sizes[0]][step]
            cells = "  ".join(
                f"{size:>9}: {results[size][step]:8.2f} ({results[size][step] / base:6.1f}x)" for size in sizes
            )
            print(f"{step:>10}  {cells}")
    finally:
        await drop_synapse_databases()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=10_000, help="the smallest window (default 10000)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.window = 100
    asyncio.run(main(args.window, args.database))
