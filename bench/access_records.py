"""Benchmark: what policy.collection costs a request on the bridge's port.

The same aiohttp handler is served three times in one run: as a baseline with aiohttp's access
log off and no records; with aiohttp's own access log written to a file (what an operator gets
by switching aiohttp's log on); and with the bridge's collection (its access logger to the same
kind of file and an access record per request in a real database, as ``Bridge`` wires them). Requests come through a trusted
proxy (X-Forwarded-For) with a browser's user agent and a referrer.

    .venv/bin/python bench/access_records.py [--requests 2000] [--concurrency 10] [--database sqlite:/tmp/x.db]

Absolute times depend on the machine; compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import socket
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
from clutto_bridge.teams.access import AccessRecords
from clutto_bridge.web.collection import RequestCollection

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


async def serve_and_time(app: web.Application, runner_options: dict, requests: int, concurrency: int) -> float:
    app.router.add_get("/_clutto/v1/teams/{team_id}", hello)
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/_clutto/v1/teams/t-123"
    try:
        async with aiohttp.ClientSession() as http:
            async def worker(n: int) -> None:
                for _ in range(n):
                    async with http.get(url, headers=HEADERS) as resp:
                        assert resp.status == 200
                        await resp.read()

            await worker(20)  # warm up
            start = time.perf_counter()
            await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
            return time.perf_counter() - start
    finally:
        await runner.cleanup()


async def main(requests: int, concurrency: int, database: str | None) -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("clutto.access", "aiohttp.access"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers = [logging.FileHandler(Path(tempfile.gettempdir()) / f"bench-{name}.log")]
        logger.propagate = False
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-access-"))
    db = create_database(database or f"sqlite:{folder / 'clutto.db'}")
    await db.start()
    try:
        records = AccessRecords(Stores.over(db, FieldCipher(Keyset.generate(0))).access, SystemClock(), 30 * 86400)
        rules = CollectionRules(ip="hashed", user_agent="family", referrer="origin", language="none",
                                trusted_proxies=parse_networks(["127.0.0.1"]))
        collection = RequestCollection(rules, SystemClock())
        baseline = await serve_and_time(web.Application(), {"access_log": None}, requests, concurrency)
        aiohttp_log = await serve_and_time(web.Application(), {}, requests, concurrency)
        app = web.Application(middlewares=[collection.middleware(records)])
        collected = await serve_and_time(app, collection.runner_options(), requests, concurrency)
        kept = len(await records.recent(limit=requests * 2))
    finally:
        await db.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{requests} requests, {concurrency} at a time, database {database or 'sqlite (temporary file)'}")
    print(f"  baseline (no access log, no records): {requests / baseline:8.0f} requests/s")
    print(f"  aiohttp's own access log to a file:    {requests / aiohttp_log:8.0f} requests/s")
    print(f"  with policy.collection (log + record): {requests / collected:8.0f} requests/s ({kept} records)")
    print(f"  time ratio collected/baseline: {collected / baseline:.2f}; collected/aiohttp's log: {collected / aiohttp_log:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database", help="URL of a database of its own (its tables are made there); default: a temporary SQLite file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.concurrency = 100, 5
    asyncio.run(main(args.requests, args.concurrency, args.database))
