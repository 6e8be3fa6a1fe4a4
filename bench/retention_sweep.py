"""Benchmark: a retention sweep of one room of N events (default 20,000), against Synapse's
own retention purge job on the same kind of data in the same run.

Two throwaway Synapses are started: one with the bridge (its sweep redacts every event
past the lifetime, then purges), one with Synapse's retention purge job enabled (it only
purges). Both rooms get N text messages the same way; both then get a lifetime of one
second. Reported: events removed per second for each and their ratio, and the bridge
process's peak resident memory (VmHWM) against its idle size after start-up.

    .venv/bin/python bench/retention_sweep.py [--events 20000]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
from harness import bridge_for, make_bot_admin

from clutto_bridge.demo.synapse import LocalSynapse


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def fill(http: aiohttp.ClientSession, base: str, token: str, room_id: str, count: int, label: str) -> float:
    """Send ``count`` messages, 16 at a time; return the seconds it took."""
    sem = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {token}"}
    start = time.monotonic()

    async def one(i: int) -> None:
        async with sem:
            url = f"{base}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{label}-{i}"
            async with http.put(url, json={"msgtype": "m.text", "body": f"message {i} " + "x" * 80}, headers=headers) as r:
                r.raise_for_status()

    for chunk in range(0, count, 1000):
        await asyncio.gather(*(one(i) for i in range(chunk, min(chunk + 1000, count))))
        print(f"  {label}: {min(chunk + 1000, count)}/{count} messages", end="\r", flush=True)
    print()
    return time.monotonic() - start


async def count_messages(http: aiohttp.ClientSession, base: str, admin_token: str, room_id: str) -> int:
    url = f"{base}/_synapse/admin/v1/rooms/{quote(room_id)}/messages"
    total, token = 0, None
    while True:
        params = {"dir": "f", "limit": "1000", **({"from": token} if token else {})}
        async with http.get(url, params=params, headers={"Authorization": f"Bearer {admin_token}"}) as r:
            data = await r.json()
        chunk = data.get("chunk", [])
        total += sum(1 for e in chunk if e["type"] == "m.room.message" and e.get("content"))
        token = data.get("end")
        if not chunk or not token:
            return total


async def main(events: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-"))
    ours = LocalSynapse(folder / "synapse-bridge")
    theirs = LocalSynapse(folder / "synapse-retention")
    bridge = bridge_for(ours, folder, **{
        "policy.retention.min": "1s", "policy.retention.batch_size": 500, "jobs.homeserver_rate": 10000})
    settings = bridge.settings
    ours.write_config([folder / "registration.yaml"])
    theirs.write_config([], extra={"retention": {"enabled": True, "allowed_lifetime_min": "1s",
                                                 "purge_jobs": [{"interval": "1s"}]}})
    ours.start()
    theirs.start()
    try:
        admin_token = await make_bot_admin(ours, bridge)
        bridge.start()
        api, auth = bridge.api, bridge.auth
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            idle_kib = rss_kib(bridge.process.pid, "VmRSS")
            owner = await ours.register_user("bench-owner")
            async with http.post(f"{api}/teams", json={"name": "Bench", "owner": owner.user_id}, headers=auth) as r:
                team = await r.json()
            room_ours = team["rooms"][0]["room_id"]
            other = await theirs.register_user("bench-user")
            other_admin = await theirs.register_user("bench-admin", admin=True)
            async with http.post(f"{theirs.url}/_matrix/client/v3/createRoom", json={"preset": "private_chat"},
                                 headers={"Authorization": f"Bearer {other.access_token}"}) as r:
                room_theirs = (await r.json())["room_id"]

            print(f"Filling two rooms with {events} messages each …")
            await fill(http, ours.url, settings.appservice.as_token, room_ours, events, "bridge-room")
            await fill(http, theirs.url, other.access_token, room_theirs, events, "synapse-room")
            await asyncio.sleep(2)  # every message is now older than the one-second lifetime

            print("Bridge sweep (redact, then purge) …")
            async with http.put(f"{api}/teams/{team['id']}/retention", json={"max_lifetime": "1s"}, headers=auth) as r:
                r.raise_for_status()
            start = time.monotonic()
            async with http.post(f"{api}/teams/{team['id']}/retention/sweep", headers=auth) as r:
                job = await r.json()
            while job["state"] not in ("done", "failed"):
                await asyncio.sleep(0.5)
                async with http.get(f"{api}/teams/{team['id']}/jobs/{job['id']}", headers=auth) as r:
                    job = await r.json()
            ours_s = time.monotonic() - start
            peak_kib = rss_kib(bridge.process.pid, "VmHWM")
            left_ours = await count_messages(http, ours.url, admin_token, room_ours)

            print("Synapse retention purge job …")
            async with http.put(f"{theirs.url}/_matrix/client/v3/rooms/{quote(room_theirs)}/state/m.room.retention/",
                                json={"max_lifetime": 1000}, headers={"Authorization": f"Bearer {other.access_token}"}) as r:
                r.raise_for_status()
            start = time.monotonic()
            while (left_theirs := await count_messages(http, theirs.url, other_admin.access_token, room_theirs)) > 1:
                if time.monotonic() - start > 1800:
                    break
                await asyncio.sleep(0.5)
            theirs_s = time.monotonic() - start

        ours_rate, theirs_rate = events / ours_s, events / theirs_s
        print()
        print(f"events per room:                {events}")
        print(f"bridge sweep:                   {ours_s:8.1f} s  {ours_rate:8.0f} events/s  (job {job['state']}, "
              f"{job['progress'].get('redacted')} redacted, {left_ours} messages left)")
        print(f"Synapse retention purge job:    {theirs_s:8.1f} s  {theirs_rate:8.0f} events/s  ({left_theirs} messages left)")
        print(f"throughput ratio bridge/Synapse: {ours_rate / theirs_rate:.3f}")
        print(f"bridge memory: idle {idle_kib / 1024:.1f} MiB, peak {peak_kib / 1024:.1f} MiB, "
              f"ratio peak/idle {peak_kib / idle_kib:.2f}")
    finally:
        bridge.stop()
        ours.stop()
        theirs.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    asyncio.run(main(parser.parse_args().events))
