"""Benchmark: one against two `clutto-bridge worker` processes sweeping 8 teams, in one run.

The bridge's database is a throwaway PostgreSQL database (workers need it); Synapse is
SQLite or, with ``--synapse-db postgres``, PostgreSQL. Sixteen teams each get a room of N
expired messages (default 250) with ``redact: always``, so each sweep redacts N messages
and purges them. The main process never claims these jobs (its poll interval is an hour
and the jobs are written to the queue with plain SQL, without the NOTIFY the bridge sends,
so nothing wakes it; the workers find them at their 1 s poll); 8 sweeps are queued
for one worker, then 8 others for two workers (each runs ``jobs.concurrency`` jobs at once).
Reported: the wall time of each round, the speed-up, and the CPU each process used in
each round, which says whether the homeserver (one Python process) was the bottleneck.

    .venv/bin/python bench/retention_workers.py [--messages 250] [--synapse-db postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
from harness import (
    POSTGRES,
    add_synapse_db_option,
    bridge_for,
    drop_synapse_databases,
    make_bot_admin,
    synapse_database,
    throwaway_database,
)
from retention_sweep import DAY, Client, team

from clutto_bridge.config import ConfigFile
from clutto_bridge.demo.synapse import LocalSynapse

TEAMS = 8  # per round (--smoke: 2)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bridge_database() -> str:
    """A fresh PostgreSQL database for the bridge (dropped with Synapse's after the run)."""
    name = await throwaway_database("clutto_bench")
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


async def queue_sweeps(database: str, team_ids: list[str]) -> list[int]:
    """Write the sweeps to the job queue directly (no process is woken; workers poll)."""
    conn = await asyncpg.connect(database)
    try:
        now = int(time.time() * 1000)
        ids = []
        for team_id in team_ids:
            ids.append(
                await conn.fetchval(
                    "INSERT INTO job (kind, team_id, state, payload, progress, attempts, next_run_at, created_at, "
                    "updated_at) VALUES ('retention_sweep', $1, 'queued', '{}', '{}', 0, $2, $2, $2) RETURNING id",
                    team_id,
                    now,
                )
            )
        return ids
    finally:
        await conn.close()


async def wait_done(database: str, ids: list[int]) -> float:
    conn = await asyncpg.connect(database)
    try:
        while True:
            rows = await conn.fetch("SELECT state, error FROM job WHERE id = ANY($1)", ids)
            if any(r["state"] == "failed" for r in rows):
                raise RuntimeError(f"a sweep failed: {[r['error'] for r in rows]}")
            if all(r["state"] == "done" for r in rows):
                return time.monotonic()
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def main(messages: int, synapse_db: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-workers-"))
    ours = LocalSynapse(folder / "synapse")
    database = await bridge_database()
    bridge = bridge_for(
        ours,
        folder,
        **{
            "appservice.database": database,
            "policy.retention.min": "1s",
            "policy.retention.batch_size": 500,
            "jobs.homeserver_rate": 10000,
            "jobs.poll_interval": "1h",
        },
    )
    ours.write_config([folder / "registration.yaml"], extra=await synapse_database(synapse_db))
    ours.start()
    workers: list[subprocess.Popen] = []
    worker_config = folder / "worker.yaml"
    worker_config.write_text(Path(bridge.file.path).read_text())
    file = ConfigFile(worker_config)
    file.load()
    file["jobs.poll_interval"] = "1s"
    file["logging.level"] = "INFO"
    file.save()
    try:
        await make_bot_admin(ours, bridge)
        bridge.start()
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            api = Client(http, bridge.api, bridge.settings.provisioning.shared_secret)
            bot = Client(http, ours.url, bridge.settings.appservice.as_token)
            owner = await ours.register_user("bench-owner")
            teams = [
                await team(api, owner.user_id, f"Team {i}", max_lifetime="1d", redact="always")
                for i in range(2 * TEAMS)
            ]
            count_messages = "SELECT COUNT(*) FROM timeline_event WHERE state=false"
            conn = await asyncpg.connect(database)
            try:
                before = await conn.fetchval(count_messages)
            finally:
                await conn.close()
            now = int(time.time() * 1000)
            print(f"Filling {2 * TEAMS} rooms with {messages} expired messages each …")
            for i, (_, room) in enumerate(teams):
                await bot.send_many(room, messages, f"t{i}", ts=lambda _: now - 2 * DAY)
                await bot.send_many(room, 1, f"t{i}-window")
            conn = await asyncpg.connect(database)
            try:  # until the appservice stream brought every message to the index
                while await conn.fetchval(count_messages) < before + 2 * TEAMS * (messages + 1):
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()

            rounds = []
            for count, batch in ((1, teams[:TEAMS]), (2, teams[TEAMS:])):
                logs = [folder / f"worker-{count}-{i}.log" for i in range(count)]
                workers = [
                    subprocess.Popen(
                        [sys.executable, "-m", "clutto_bridge", "worker", "-c", str(worker_config)],
                        stdout=subprocess.DEVNULL,
                        stderr=open(log, "wb"),
                    )
                    for log in logs
                ]
                deadline = time.monotonic() + 60
                while not all("Job worker" in log.read_text() for log in logs):
                    if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                        raise RuntimeError(f"a worker did not start; see {logs}")
                    await asyncio.sleep(0.1)
                cpu = {
                    "synapse": cpu_seconds(ours.process.pid),
                    **{f"worker {i}": cpu_seconds(w.pid) for i, w in enumerate(workers)},
                }
                start = time.monotonic()
                ids = await queue_sweeps(database, [t for t, _ in batch])
                end = await wait_done(database, ids)
                used = {
                    "synapse": cpu_seconds(ours.process.pid),
                    **{f"worker {i}": cpu_seconds(w.pid) for i, w in enumerate(workers)},
                }
                ran = [len(re.findall(r"Running job (\d+) ", log.read_text())) for log in logs]
                for worker in workers:
                    worker.send_signal(signal.SIGTERM)
                    await asyncio.to_thread(worker.wait, 30)
                workers = []
                rounds.append((count, end - start, {k: used[k] - cpu[k] for k in used}, ran))

        print()
        print(
            f"Synapse on {synapse_db}, bridge on PostgreSQL; {TEAMS} teams x {messages} messages redacted and purged, "
            f"jobs.concurrency {bridge.settings.jobs.concurrency} per worker"
        )
        for count, seconds, cpu, ran in rounds:
            shares = ", ".join(f"{k} {v / seconds:.2f}" for k, v in cpu.items())
            print(
                f"{count} worker(s): {seconds:6.1f} s, {TEAMS * messages / seconds:5.0f} redactions/s; "
                f"jobs per worker {ran}; CPU (cores busy) {shares}"
            )
        print(f"speed-up two workers / one: {rounds[0][1] / rounds[1][1]:.2f}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        bridge.stop()
        ours.stop()
        await drop_synapse_databases()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=250)
    add_synapse_db_option(parser)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.messages = 3
        TEAMS = 2
    asyncio.run(main(args.messages, args.synapse_db))
