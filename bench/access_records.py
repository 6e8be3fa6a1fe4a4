"""Benchmark: what policy.collection costs a request on the bridge's port.

The same aiohttp handler is served three times in one run: as a baseline with aiohttp's access
log off and no records; with aiohttp's own access log written to a file (what an operator gets
by switching aiohttp's log on); and with the bridge's collection (its access logger to the same
kind of file and an access record per request in a real database, as ``Bridge`` wires them). Requests come through a trusted
proxy (X-Forwarded-For) with a browser's user agent and a referrer.

    .venv/bin/python bench/access_records.py [--requests 2000] [--concurrency 10] [--rounds 5] [--database sqlite:/tmp/x.db]

Absolute times depend on the machine; compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from clutto_bridge.clock import SystemClock
from clutto_bridge.crypto.cipher import FieldCipher
from clutto_bridge.crypto.keyset import Keyset
from clutto_bridge.db import Stores, create_database
from clutto_bridge.policy.collection import CollectionRules, parse_networks
from clutto_bridge.web.collection import RequestCollection
from clutto_bridge.web.request_records import AccessRecords

HEADERS = {
    "X-Forwarded-For": "198.51.100.77",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Referer": "https://chat.example.com/#/room/!abc:example.com",
}


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve(app: web.Application, runner_options: dict) -> tuple[web.AppRunner, str]:
    app.router.add_get("/_clutto/v1/teams/{team_id}", hello)
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/_clutto/v1/teams/t-123"


async def timed(http: aiohttp.ClientSession, url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """Seconds per request, ``concurrency`` at a time: wall clock, and CPU of this process
    (client and server, the database thread included), which other work on the machine
    disturbs far less than the wall clock."""

    async def worker(n: int) -> None:
        for _ in range(n):
            async with http.get(url, headers=HEADERS) as resp:
                assert resp.status == 200
                await resp.read()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    count = requests // concurrency * concurrency
    return (time.perf_counter() - start) / count, (time.process_time() - cpu) / count


def record_work(collection: RequestCollection, records: AccessRecords, count: int) -> float:
    """CPU seconds per request of what the recording middleware does (the request's facts,
    its route, the record appended), on fresh requests as aiohttp builds them, and of the
    batched database write, measured alone: the machine's other work barely moves these."""
    from aiohttp.test_utils import make_mocked_request
    from multidict import CIMultiDict

    class Transport:
        def get_extra_info(self, name: str, default: object = None) -> object:
            return ("127.0.0.1", 40000) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    requests = [
        make_mocked_request("GET", "/_clutto/v1/teams/t-123", headers=CIMultiDict(HEADERS), transport=Transport())
        for _ in range(count)
    ]
    started = time.process_time()
    for request in requests:
        # (route_of reads the route off the router's match; a mocked request has none, and a
        # mock's attributes cost more than all the rest: its three attribute reads are left out)
        records.record(request.method, "/_clutto/v1/teams/{team_id}", 200, collection.facts(request))
    return (time.process_time() - started) / count


async def write_work(records: AccessRecords, count: int) -> float:
    """CPU seconds per record of storing ``count`` pending records (the batched write)."""
    started = time.process_time()
    await records.flush()
    return (time.process_time() - started) / count


def spread(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e6:5.0f} us [{min(values) * 1e6:.0f}-{max(values) * 1e6:.0f}]"


async def main(requests: int, concurrency: int, rounds: int, database: str | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("clutto.access", "aiohttp.access"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers = [logging.FileHandler(Path(tempfile.gettempdir()) / f"bench-{name}.log")]
        logger.propagate = False
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-access-"))
    db = create_database(database or f"sqlite:{folder / 'clutto.db'}")
    await db.start()
    runners = []
    try:
        records = AccessRecords(Stores.over(db, FieldCipher(Keyset.generate(0))).access, SystemClock(), 30 * 86400)
        rules = CollectionRules(
            ip="hashed",
            user_agent="family",
            referrer="origin",
            language="none",
            trusted_proxies=parse_networks(["127.0.0.1"]),
        )
        collection = RequestCollection(rules, SystemClock())
        modes = {
            "baseline (no access log, no records)": (web.Application(), {"access_log": None}),
            "aiohttp's own access log to a file": (web.Application(), {}),
            "access records only (no log line)": (
                web.Application(middlewares=[collection.middleware(records)]),
                {"access_log": None},
            ),
            "policy.collection (log line + record)": (
                web.Application(middlewares=[collection.middleware(records)]),
                collection.runner_options(),
            ),
        }
        urls = {}
        for name, (app, options) in modes.items():
            runner, urls[name] = await serve(app, options)
            runners.append(runner)
        times: dict[str, list[float]] = {name: [] for name in modes}
        cpu: dict[str, list[float]] = {name: [] for name in modes}
        async with aiohttp.ClientSession() as http:
            for url in urls.values():
                await timed(http, url, 50, 5)  # warm up
            for n in range(rounds):  # alternate modes round by round, in a rotating order
                names = list(modes)[n % len(modes) :] + list(modes)[: n % len(modes)]
                for name in names:
                    wall, used = await timed(http, urls[name], requests, concurrency)
                    times[name].append(wall)
                    cpu[name].append(used)
        await records.flush()
        in_process, writes = [], []
        for _ in range(rounds):
            in_process.append(record_work(collection, records, requests))
            writes.append(await write_work(records, requests))
        kept = len(await records.recent(limit=requests * rounds * 5))
    finally:
        for runner in runners:
            await runner.cleanup()
        await db.stop()
        shutil.rmtree(folder, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in cpu.items()}
    base, log_only, records_only, collected = (median[name] for name in modes)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(
        f"{requests} requests a round, {concurrency} at a time, {rounds} rounds; database "
        f"{database or 'sqlite (temporary file)'}; load average {load}, {os.cpu_count()} cores; {kept} records kept"
    )
    print("per request, median of the rounds [min-max]:  CPU (client and server)   wall clock")
    for name in modes:
        print(f"  {name:40} {spread(cpu[name]):>24}   {spread(times[name])}")
    print("CPU shares:")
    print(
        f"access records: {(records_only - base) / base:+.1%} of a trivial request (goal <= 5%); "
        f"log line + record: {(collected - base) / base:+.1%}; aiohttp's log line alone: {(log_only - base) / base:+.1%}"
    )
    print(f"time ratio collected/baseline: {collected / base:.2f}; collected/aiohttp's log: {collected / log_only:.2f}")
    work, write = statistics.median(in_process), statistics.median(writes)
    print(
        f"measured alone, CPU per request: facts + record {spread(in_process)}, the batched database "
        f"write {spread(writes)}; together {(work + write) / base:.1%} of a trivial request's CPU "
        f"(client and server, {base * 1e6:.0f} us) (goal <= 5%)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each mode, alternating")
    parser.add_argument(
        "--database", help="URL of a database of its own (its tables are made there); default: a temporary SQLite file"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.concurrency, args.rounds = 100, 5, 1
    asyncio.run(main(args.requests, args.concurrency, args.rounds, args.database))
