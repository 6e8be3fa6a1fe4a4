"""Benchmark: retention sweeps against the homeserver's own floor, as ratios in one run.

Two throwaway Synapses (SQLite, or PostgreSQL with ``--synapse-db postgres``): one with the
bridge, one with Synapse's retention purge job, filled at the same time (one core each).
With N events (default 5,000):

- **purge-only sweep** (a team of one homeserver, ``redact: auto``): a room of N messages
  spread over 100 days in order, swept with a 2-day lifetime (99% expire), against a bare
  ``purge_history`` of *the same room* up to the same event, and against Synapse's retention
  purge job on N messages. The same room: once filled, the bridge's Synapse and database are
  copied, and every round starts from that copy, with a fresh Synapse process that has made
  one small purge first (Synapse's first purge after a start pays a fixed extra 0.2 to 0.3 s,
  whichever room it is). Rounds: bare purge, sweep, bare purge; the baseline is the mean of
  the two bare rounds;
- **redaction rate** of a sweep with ``redact: always`` (M = N/5 messages, at most
  ``--redacting``) against the raw ceiling measured on the same Synapse: the bot redacting M
  messages of a plain room with 8, 32 and 64 requests in flight (a third each; the best of
  the three is the ceiling);
- **second sweep a day later** of the first room (lifetime 1 day: the next 1% expires):
  events read from the homeserver and index rows read per event removed;
- the bridge's peak memory against its idle size.

Each team room is swept once before its messages arrive, so the index holds them from the
appservice stream, as in a running deployment. The sweep round starts the bridge again on
the copy, as a restart would.

    .venv/bin/python bench/retention_sweep.py [--events 5000] [--redacting 4000] [--synapse-db postgres]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from harness import (
    Snapshot,
    add_synapse_db_option,
    bridge_for,
    drop_synapse_databases,
    make_bot_admin,
    synapse_database,
)

from clutto_bridge.demo.synapse import LocalSynapse

DAY = 86_400_000


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Client:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.headers = http, base, {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        for attempt in (1, 2):
            try:
                async with self.http.request(
                    method, f"{self.base}{path}", json=body, params=params or None, headers=self.headers
                ) as r:
                    data = await r.json(content_type=None)
                    if r.status >= 400:
                        raise RuntimeError(f"{method} {path}: {r.status} {data}")
                    return data
            except aiohttp.ServerDisconnectedError:
                if attempt == 2:
                    raise  # else a kept-alive connection to the process a round stopped

    async def send_many(self, room_id: str, count: int, label: str, ts: Any = None, in_flight: int = 8) -> list[str]:
        """``count`` messages in order of i (``ts(i)``: a massaged timestamp, appservice only).

        8 in flight fill nearly as fast as 32 (116 vs 128 events/s here) and leave a room as
        live traffic does, with a handful of forward extremities. At 32, Synapse forks the room's
        history: 1,500 extremities after 3,000 messages, 20,000 after 30,000, and each send
        costs more with every one (the fill of 100,000 slowed to 18 events/s)."""
        sem, ids = asyncio.Semaphore(in_flight), [""] * count

        async def one(i: int) -> None:
            async with sem:
                params = {"ts": str(ts(i))} if ts else {}
                data = await self.call(
                    "PUT",
                    f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{label}-{i}",
                    {"msgtype": "m.text", "body": f"message {i} " + "x" * 80},
                    **params,
                )
                ids[i] = data["event_id"]

        for chunk in range(0, count, 500):  # chunks keep the timeline close to the order of i
            await asyncio.gather(*(one(i) for i in range(chunk, min(chunk + 500, count))))
            print(f"  {label}: {min(chunk + 500, count)}/{count}", end="\r", flush=True)
        print()
        return ids

    async def messages_left(self, room_id: str) -> int:
        total, token = 0, None
        while True:
            data = await self.call(
                "GET",
                f"/_synapse/admin/v1/rooms/{quote(room_id)}/messages",
                dir="f",
                limit="1000",
                **({"from": token} if token else {}),
            )
            chunk = data.get("chunk", [])
            total += sum(1 for e in chunk if e["type"] == "m.room.message" and e.get("content"))
            token = data.get("end")
            if not chunk or not token:
                return total


async def sweep(api: Client, team_id: str) -> tuple[dict, float]:
    start = time.monotonic()
    job = await api.call("POST", f"/teams/{team_id}/retention/sweep")
    while job["state"] not in ("done", "failed"):
        await asyncio.sleep(0.05)
        job = await api.call("GET", f"/teams/{team_id}/jobs/{job['id']}")
    if job["state"] != "done":
        raise RuntimeError(f"sweep failed: {job}")
    return job["progress"], time.monotonic() - start


async def bare_purge(admin: Client, room_id: str, before_event: str) -> float:
    start = time.monotonic()
    purge = await admin.call(
        "POST",
        f"/_synapse/admin/v1/purge_history/{quote(room_id)}/{quote(before_event)}",
        {"delete_local_events": True},
    )
    while (await admin.call("GET", f"/_synapse/admin/v1/purge_history_status/{purge['purge_id']}"))[
        "status"
    ] != "complete":
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def raw_redactions(bot: Client, room_id: str, event_ids: list[str], in_flight: int) -> float:
    """Redactions per second with ``in_flight`` requests at once: the homeserver's ceiling."""
    sem = asyncio.Semaphore(in_flight)

    async def one(i: int, event_id: str) -> None:
        async with sem:
            await bot.call(
                "PUT",
                f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}/raw{in_flight}-{i}",
                {"reason": "ceiling"},
            )

    start = time.monotonic()
    await asyncio.gather(*(one(i, e) for i, e in enumerate(event_ids)))
    return len(event_ids) / (time.monotonic() - start)


async def team(api: Client, owner: str, name: str, **retention: str) -> tuple[str, str]:
    created = await api.call("POST", "/teams", {"name": name, "owner": owner})
    await api.call("PUT", f"/teams/{created['id']}/retention", retention)
    await sweep(api, created["id"])  # the index of its rooms is filled now, before the messages
    return created["id"], created["rooms"][0]["room_id"]


async def main(events: int, redacting: int, synapse_db: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-"))
    ours = LocalSynapse(folder / "synapse-bridge")
    theirs = LocalSynapse(folder / "synapse-retention")
    bridge = bridge_for(
        ours,
        folder,
        **{"policy.retention.min": "1s", "policy.retention.batch_size": 500, "jobs.homeserver_rate": 10000},
    )
    settings = bridge.settings
    registrations, ours_extra = [folder / "registration.yaml"], await synapse_database(synapse_db)
    ours.write_config(registrations, extra=ours_extra)
    theirs.write_config(
        [],
        extra={
            **await synapse_database(synapse_db),
            "retention": {"enabled": True, "allowed_lifetime_min": "1s", "purge_jobs": [{"interval": "1s"}]},
        },
    )
    ours.start()
    theirs.start()
    snapshot = Snapshot(ours, ours_extra, folder / "clutto.db")

    def start_ours() -> LocalSynapse:
        """A fresh Synapse process on the same folder, port and database."""
        again = LocalSynapse(ours.folder, port=ours.port, server_name=ours.server_name)
        again.write_config(registrations, extra=ours_extra)
        again.start()
        return again

    try:
        admin_token = await make_bot_admin(ours, bridge)
        bridge.start()
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            api = Client(http, bridge.api, bridge.settings.provisioning.shared_secret)
            bot = Client(http, ours.url, settings.appservice.as_token)
            admin = Client(http, ours.url, admin_token)
            owner = await ours.register_user("bench-owner")
            other = await theirs.register_user("bench-user")
            other_admin = await theirs.register_user("bench-admin", admin=True)
            theirs_user = Client(http, theirs.url, other.access_token)
            theirs_admin = Client(http, theirs.url, other_admin.access_token)

            purge_team, purge_room = await team(api, owner.user_id, "Purging", max_lifetime="2d")
            redact_team, redact_room = await team(api, owner.user_id, "Redacting", max_lifetime="1d", redact="always")
            raw_room = (await bot.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}))["room_id"]
            warm_room = (await admin.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}))[
                "room_id"
            ]
            room_theirs = (await theirs_user.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}))[
                "room_id"
            ]
            warm_theirs = (
                await theirs_admin.call("POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"})
            )["room_id"]

            now = int(time.time() * 1000)
            expired = events * 99 // 100
            print(f"Filling the rooms ({events} messages; {redacting} in the redaction rooms), both Synapses at once …")

            async def fill_ours() -> tuple[str, list[str], list[str]]:
                # Messages arrive in order of their timestamps, as in a live room: the expired
                # ones (101 to 3 days old) first, then the 1% inside the window (1.9 to 1.1 days
                # old: they expire a day later), the first of them alone, so it is the purge
                # point of the bare rounds. Within a batch 8 sends are in flight and land in
                # any order; across the cutoff that would leave an expired message after a newer
                # one, out of a purge's reach (redacted instead, which is not what this measures).
                await bot.send_many(
                    purge_room, expired, "purge", ts=lambda i: now - 101 * DAY + i * 98 * DAY // expired
                )
                newer = lambda i: now - 19 * DAY // 10 + i * 8 * DAY // 10 // (events - expired)  # noqa: E731
                edge = (await bot.send_many(purge_room, 1, "purge-edge", ts=newer))[0]
                await bot.send_many(purge_room, events - expired - 1, "purge-new", ts=lambda i: newer(i + 1))
                await bot.send_many(purge_room, 1, "purge-window")
                await bot.send_many(redact_room, redacting, "redact", ts=lambda i: now - 2 * DAY)
                await bot.send_many(redact_room, 1, "redact-window")
                raw_ids = await bot.send_many(raw_room, redacting, "raw")
                warm_ids = await admin.send_many(warm_room, 200, "warm")
                return edge, raw_ids, warm_ids

            async def fill_theirs() -> list[str]:
                await theirs_user.send_many(room_theirs, events, "theirs")
                return await theirs_admin.send_many(warm_theirs, 200, "warm-theirs")

            (edge, raw_ids, warm_ids), warm_theirs_ids = await asyncio.gather(fill_ours(), fill_theirs())

            print("Synapse's retention purge job …")
            await bare_purge(theirs_admin, warm_theirs, warm_theirs_ids[-1])  # its first purge, not measured
            await theirs_user.call(
                "PUT", f"/_matrix/client/v3/rooms/{quote(room_theirs)}/state/m.room.retention/", {"max_lifetime": 1000}
            )
            start = time.monotonic()
            while (
                left_theirs := await theirs_admin.messages_left(room_theirs)
            ) > 1 and time.monotonic() - start < 1800:
                await asyncio.sleep(0.2)
            theirs_s = time.monotonic() - start
            theirs.stop()

            print("Copying the bridge's Synapse and database; every round starts from the copy …")
            bridge.stop()
            ours.stop()
            await snapshot.take()

            async def bare_round() -> float:
                nonlocal ours
                ours = start_ours()
                await bare_purge(admin, warm_room, warm_ids[-1])  # Synapse's first purge, not measured
                seconds = await bare_purge(admin, purge_room, edge)
                ours.stop()
                await snapshot.restore()
                return seconds

            print("Round 1: bare purge_history of the room …")
            bare_1 = await bare_round()
            print("Round 2: the bridge's sweeps …")
            ours = start_ours()
            bridge.start()
            await bridge.ready(http)
            idle_kib = rss_kib(bridge.process.pid, "VmRSS")
            await bare_purge(admin, warm_room, warm_ids[-1])  # Synapse's first purge, not measured
            print("  purge-only sweep (2-day lifetime: 99% expired) …")
            first, first_s = await sweep(api, purge_team)
            print("  redacting sweep …")
            redacted, redact_s = await sweep(api, redact_team)
            print("  raw redaction ceiling …")
            third = len(raw_ids) // 3
            ceiling_8 = await raw_redactions(bot, raw_room, raw_ids[:third], 8)
            ceiling_32 = await raw_redactions(bot, raw_room, raw_ids[third : 2 * third], 32)
            ceiling_64 = await raw_redactions(bot, raw_room, raw_ids[2 * third :], 64)
            print("  second sweep, a day later …")
            await api.call("PUT", f"/teams/{purge_team}/retention", {"max_lifetime": "1d"})
            second, second_s = await sweep(api, purge_team)
            peak_kib = rss_kib(bridge.process.pid, "VmHWM")
            left_ours = await admin.messages_left(purge_room)
            bridge.stop()
            ours.stop()
            await snapshot.restore()
            print("Round 3: bare purge_history of the room again …")
            bare_2 = await bare_round()

        sweep_rate, job_rate = first["removed"] / first_s, events / theirs_s
        bare_rates = (expired / bare_1, expired / bare_2)
        bare_rate = sum(bare_rates) / 2
        redaction_rate, ceiling = redacted["redacted"] / redact_s, max(ceiling_8, ceiling_32, ceiling_64)
        removed2 = max(1, second["removed"])
        print()
        print(f"Synapse on {synapse_db}, {events} events; rates in events/s")
        print(
            f"purge-only sweep:            {sweep_rate:7.0f}  ({first['removed']} removed in {first_s:.2f} s, "
            f"{first['redacted']} redacted, {first['events_read']} read from the homeserver)"
        )
        print(
            f"bare purge_history:          {bare_rate:7.0f}  ratio sweep/purge {sweep_rate / bare_rate:.2f}"
            f"  (rounds 1 and 3: {bare_rates[0]:.0f} and {bare_rates[1]:.0f}; {expired} in {bare_1:.2f} and {bare_2:.2f} s)"
        )
        print(
            f"Synapse retention purge job: {job_rate:7.0f}  ratio sweep/job   {sweep_rate / job_rate:.2f}"
            f"  ({left_theirs} left)"
        )
        print(
            f"redacting sweep:             {redaction_rate:7.0f}  ({redacted['redacted']} redactions in {redact_s:.1f} s)"
        )
        redacting_s = redacted.get("timings", {}).get("redact", 0) or redact_s
        print(
            f"raw 8 / 32 / 64 in flight: {ceiling_8:.0f} / {ceiling_32:.0f} / {ceiling_64:.0f}  ratio sweep/ceiling "
            f"{redaction_rate / ceiling:.2f} (its redaction phase alone: "
            f"{redacted['redacted'] / redacting_s / ceiling:.2f})"
        )
        if redacted.get("pace"):
            in_flight = redacted.get("redaction_seconds", 0) / redacting_s
            trail = " ".join(f"{limit}@{done}" for done, limit in redacted["pace"])
            print(f"  pace (limit@redactions done): {trail}; {in_flight:.1f} in flight on average while redacting")
        print(
            f"second sweep a day later:    {second['removed']} removed in {second_s:.1f} s; per event removed: "
            f"{second['events_read'] / removed2:.2f} homeserver events read, "
            f"{second['index_rows_read'] / removed2:.2f} index rows read ({left_ours} messages left in the room)"
        )
        for name, progress, seconds in (
            ("purge-only", first, first_s),
            ("redacting", redacted, redact_s),
            ("second", second, second_s),
        ):
            t = progress.get("timings", {})
            steps = ", ".join(f"{k} {v:.2f}" for k, v in sorted(t.items(), key=lambda kv: -kv[1]))
            print(
                f"  {name} sweep {seconds:.2f} s: {steps}; outside the handler {seconds - sum(t.values()) + t.get('claim', 0):.2f}"
            )
        print(
            f"bridge memory: idle {idle_kib / 1024:.1f} MiB, peak {peak_kib / 1024:.1f} MiB, "
            f"ratio peak/idle {peak_kib / idle_kib:.2f}"
        )
    finally:
        bridge.stop()
        ours.stop()
        theirs.stop()
        await drop_synapse_databases()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="messages in the purged room (default 5000)")
    parser.add_argument(
        "--redacting",
        type=int,
        default=4000,
        help="at most this many messages in each redaction room (N/5 below that; default 4000)",
    )
    add_synapse_db_option(parser)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.events, args.redacting = 200, 100
    if args.events < 200 or args.redacting < 100:
        parser.error("--events needs at least 200 and --redacting at least 100")
    asyncio.run(main(args.events, min(max(100, args.events // 5), args.redacting), args.synapse_db))
