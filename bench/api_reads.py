"""Benchmark: API reads while the bridge writes (issue 28, item 3).

A throwaway Synapse and the bridge in its own process, on its embedded SQLite database. One team
with ``--members`` members. Each round and each variant restarts the bridge with that variant's
``appservice.database_readers`` (0: every query through mautrix's one connection, today's
baseline; N: N read-only connections beside the writer), then measures:

- sequential: ``--requests`` ``GET /teams/{id}`` one after another, p50;
- loaded: ``--in-flight`` clients each sending ``GET /teams/{id}`` back to back while
  ``--writers`` clients toggle ``PUT /teams/{id}/export-setting`` (a team row and an audit record
  each time), p50 and p99 of the reads and the writes per second.

Prints, per variant, the medians over rounds with their spread, the loaded p99 over the
sequential p50 (goal: <= 3x at 20 in flight) and each variant's p99 against the baseline's.

    .venv/bin/python bench/api_reads.py [--rounds 3] [--in-flight 20] [--readers 0,2] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BridgeUnderTest, quantile, synapse_with_bridge  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_get(http: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> float:
    started = time.perf_counter()
    async with http.get(url, headers=auth) as resp:
        await resp.read()
        assert resp.status == 200, resp.status
    return time.perf_counter() - started


async def sequential(http: aiohttp.ClientSession, url: str, auth: dict[str, str], requests: int) -> float:
    return statistics.median([await timed_get(http, url, auth) for _ in range(requests)])


async def loaded(
    http: aiohttp.ClientSession, bridge: BridgeUnderTest, team: str, requests: int, in_flight: int, writers: int
) -> tuple[float, float, float]:
    """(read p50, read p99, writes per second, reads per second, the bridge's CPU ms per request)
    with ``in_flight`` readers and ``writers`` writers."""
    url = f"{bridge.api}/teams/{team}"
    latencies: list[float] = []
    writes = 0
    done = asyncio.Event()

    async def reader() -> None:
        for _ in range(requests):
            latencies.append(await timed_get(http, url, bridge.auth))

    async def writer() -> None:
        nonlocal writes
        flag = False
        while not done.is_set():
            flag = not flag
            async with http.put(f"{url}/export-setting", json={"before_purge": flag}, headers=bridge.auth) as resp:
                assert resp.status == 200, await resp.text()
            writes += 1

    assert bridge.process is not None
    cpu = cpu_seconds(bridge.process.pid)
    started = time.perf_counter()
    writing = [asyncio.create_task(writer()) for _ in range(writers)]
    await asyncio.gather(*(reader() for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    done.set()
    await asyncio.gather(*writing)
    served = len(latencies) + writes
    cpu_ms = (cpu_seconds(bridge.process.pid) - cpu) * 1000 / served
    return quantile(latencies, 0.5), quantile(latencies, 0.99), writes / elapsed, len(latencies) / elapsed, cpu_ms


async def prepare(http: aiohttp.ClientSession, bridge: BridgeUnderTest, owner: str, members: int) -> str:
    async with http.post(f"{bridge.api}/teams", json={"name": "Reads", "owner": owner}, headers=bridge.auth) as resp:
        team = (await resp.json())["id"]
    for i in range(members):
        body = {"username": f"reader{i}", "email": f"reader{i}@example.com", "password": f"pw-{i}-reads"}
        async with http.post(f"{bridge.api}/teams/{team}/members", json=body, headers=bridge.auth) as resp:
            assert resp.status == 201, await resp.text()
    return team


def spread(values: list[float], scale: float = 1000) -> str:
    return f"{statistics.median(values) * scale:6.2f} ({min(values) * scale:.2f}..{max(values) * scale:.2f})"


async def main(args: argparse.Namespace) -> None:
    variants = args.readers.split(",")
    results: dict[str, dict[str, list[float]]] = {
        v: {"seq": [], "p50": [], "p99": [], "wps": [], "rps": [], "cpu": []} for v in variants
    }
    with tempfile.TemporaryDirectory() as tmp:
        async with synapse_with_bridge(Path(tmp)) as (synapse, bridge):
            owner = await synapse.register_user("owner")
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                team = ""
                for r in range(args.rounds):
                    order = variants if r % 2 == 0 else list(reversed(variants))
                    for readers in order:
                        bridge.reconfigure(**{"appservice.database_readers": int(readers.rstrip("u"))})
                        bridge.start(uvloop=readers.endswith("u"))
                        try:
                            await bridge.ready(http)
                            if not team:
                                team = await prepare(http, bridge, owner.user_id, args.members)
                            url = f"{bridge.api}/teams/{team}"
                            await sequential(http, url, bridge.auth, args.requests // 4)  # warm-up
                            got = results[readers]
                            got["seq"].append(await sequential(http, url, bridge.auth, args.requests))
                            p50, p99, wps, rps, cpu = await loaded(
                                http, bridge, team, args.requests, args.in_flight, args.writers
                            )
                            got["p50"].append(p50)
                            got["p99"].append(p99)
                            got["wps"].append(wps)
                            got["rps"].append(rps)
                            got["cpu"].append(cpu)
                            print(
                                f"round {r + 1} readers={readers}: sequential p50 {got['seq'][-1] * 1000:.2f} ms; "
                                f"{args.in_flight} in flight p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; "
                                f"{rps:.0f} reads/s, {wps:.0f} writes/s, bridge CPU {cpu:.2f} ms a request",
                                flush=True,
                            )
                        finally:
                            bridge.stop()
    base = statistics.median(results[variants[0]]["p99"])
    print(
        f"\nGET /teams/{{id}}, {args.members} members, {args.in_flight} in flight + {args.writers} writers; ms, median (min..max) of {args.rounds} rounds"
    )
    print(
        "| readers | sequential p50 | loaded p50 | loaded p99 | p99 / sequential p50 (goal <= 3) | p99 vs readers="
        f"{variants[0]} | reads/s | writes/s | bridge CPU ms a request |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for readers in variants:
        got = results[readers]
        ratio = statistics.median(got["p99"]) / statistics.median(got["seq"])
        print(
            f"| {readers} | {spread(got['seq'])} | {spread(got['p50'])} | {spread(got['p99'])} | {ratio:.1f}x | "
            f"{statistics.median(got['p99']) / base:.2f} | {statistics.median(got['rps']):.0f} | "
            f"{statistics.median(got['wps']):.0f} | {statistics.median(got['cpu']):.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="reads per client (and sequential reads)")
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument(
        "--readers",
        default="0,2",
        help="database_readers values; the first is the baseline; a 'u' suffix (2u) runs the bridge on uvloop",
    )
    parser.add_argument("--smoke", action="store_true", help="2 members, 10 reads, 4 in flight, 1 round")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.members, args.requests, args.in_flight = 1, 2, 10, 4
    asyncio.run(main(args))
