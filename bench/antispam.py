"""Benchmark: enforcement before the write (synapse-http-antispam) against the same Synapse
without the module, in the same run.

- Throughput: a member sends messages to a team room (4 at a time); messages per second
  with the module vs without (goal: ratio >= 0.9). Phases alternate on one Synapse,
  restarted with and without the module (without, with, without, ... ``--rounds`` times
  with); each phase with the module is compared with the mean of the phases either side of
  it, and the spread of those ratios is printed. Nothing else talks to the bridge during
  these phases.
- Callback latency as Synapse sees it: a last phase with the module sends the same load
  while the member also renames themselves (refused: each rename is a
  ``user_may_join_room`` question). Synapse runs with its HTTP client's log at DEBUG and
  microsecond timestamps; the time from its "Sending request" to its "Received response"
  line of each call to the bridge is the round trip (goal: p99 < 5 ms). A probe from this
  process asks both questions every 100 ms and reads the bridge's ``Server-Timing``: the
  decision alone.
- A forbidden display name: a member renames themselves in a team room. Without the module:
  how long teammates see the name before the bridge puts the profile's back. With it: whether
  teammates ever see it (goal: never), checked on the room's state and timeline.

The bridge runs as its own process throughout.

    .venv/bin/python bench/antispam.py [--messages 600] [--rounds 3] [--renames 10]

The machine is shared and small (2 cores here): compare the ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import aiohttp
from harness import BridgeUnderTest, Client, bridge_for, make_bot_admin, quantile

from clutto_bridge.demo.synapse import LocalSynapse
from clutto_bridge.web.antispam import PATH, module_config

CONCURRENCY = 4


def start_synapse(
    folder: Path,
    port: int | None,
    bridge: BridgeUnderTest,
    with_module: bool,
    traced: bool = False,
) -> LocalSynapse:
    synapse = LocalSynapse(folder, port=port)
    extra = {"modules": [module_config(bridge.settings.appservice.address, bridge.settings.antispam.shared_secret)]}
    synapse.write_config([bridge.folder / "registration.yaml"], extra if with_module else None)
    if traced:
        (synapse.folder / "log.yaml").write_text(json.dumps(traced_log_config(synapse.log_path)))
    synapse.start()
    return synapse


def traced_log_config(path: Path) -> dict:
    """Synapse's log with its HTTP client at DEBUG (a line before each request it sends),
    microsecond timestamps and the request context that made the call (to pair the lines)."""
    return {
        "version": 1,
        "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter"}},
        "formatters": {"precise": {"format": "%(created).6f %(request)s %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(path),
                "filters": ["context"],
            }
        },
        "root": {"level": "INFO", "handlers": ["file"]},
        "loggers": {"synapse.http.client": {"level": "DEBUG"}},
        "disable_existing_loggers": False,
    }


_SENT = re.compile(r"^(\d+\.\d+) (\S+) synapse\.http\.client DEBUG Sending request POST \S+/_clutto/antispam/(\w+)$")
_RECEIVED = re.compile(
    r"^(\d+\.\d+) (\S+) synapse\.http\.client INFO Received response to POST \S+/_clutto/antispam/(\w+): (\d+)$"
)


def round_trips(log_text: str) -> dict[str, list[float]]:
    """Seconds from Synapse's "Sending request" to its "Received response" of each call to the
    bridge's endpoints, by callback, paired by the request context that made the call."""
    sent: dict[tuple[str, str], float] = {}
    trips: dict[str, list[float]] = {}
    for line in log_text.splitlines():
        if m := _SENT.match(line):
            sent[(m[2], m[3])] = float(m[1])
        elif (m := _RECEIVED.match(line)) and (m[2], m[3]) in sent:
            trips.setdefault(m[3], []).append(float(m[1]) - sent.pop((m[2], m[3])))
    return trips


async def throughput(sender: Client, room: str, count: int, probe) -> float:
    """Messages per second, ``CONCURRENCY`` in flight; ``probe`` runs alongside until done."""
    done = asyncio.Event()
    probing = asyncio.create_task(probe(done))
    queue = list(range(count))
    start = time.monotonic()

    async def worker() -> None:
        while queue:
            i = queue.pop()
            await sender.call(
                "PUT",
                f"/v3/rooms/{quote(room)}/send/m.room.message/{uuid.uuid4().hex}",
                {"msgtype": "m.text", "body": f"load {i}"},
            )

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.monotonic() - start
    done.set()
    await probing
    return count / elapsed


def decision_probe(
    http: aiohttp.ClientSession,
    bridge: BridgeUnderTest,
    sender: str,
    room: str,
    samples: dict[str, list[float]],
    decisions: dict[str, list[float]],
):
    """Every 100 ms, alternately the question Synapse asks for each message (in this config
    answered without a query) and the one it asks for each join or name change (one indexed
    query): the round trip from this process and the bridge's own time (``Server-Timing``)."""
    base = f"{bridge.settings.appservice.address}{PATH}"
    headers = {"Authorization": f"Bearer {bridge.settings.antispam.shared_secret}"}
    event = {
        "type": "m.room.message",
        "sender": sender,
        "room_id": room,
        "event_id": "$probe",
        "content": {"msgtype": "m.text", "body": "probe"},
    }
    questions = [
        ("check_event_for_spam", {"event": event}),
        ("user_may_join_room", {"user": sender, "room": room, "is_invited": True}),
    ]

    async def probe(done: asyncio.Event) -> None:
        i = 0
        while not done.is_set():
            name, body = questions[i % 2]
            i += 1
            t0 = time.perf_counter()
            async with http.post(f"{base}/{name}", json=body, headers=headers) as r:
                await r.read()
                samples.setdefault(name, []).append(time.perf_counter() - t0)
                decisions.setdefault(name, []).append(float(r.headers["Server-Timing"].partition("dur=")[2]) / 1000)
            await asyncio.sleep(0.1)

    return probe


def rename_load(member: Client, room: str, statuses: list[int]):
    """The member renames themselves in the room every 50 ms (with the module each is a
    ``user_may_join_room`` question, refused)."""
    path = f"/v3/rooms/{quote(room)}/state/m.room.member/{quote(member.user_id)}"

    async def load(done: asyncio.Event) -> None:
        content = await member.call("GET", path)
        while not done.is_set():
            answer = await member.call(
                "PUT", path, {**content, "displayname": f"Nick {uuid.uuid4().hex[:6]}"}, ok=False
            )
            statuses.append(answer["status"])
            await asyncio.sleep(0.05)

    return load


def both(*probes):
    async def run(done: asyncio.Event) -> None:
        await asyncio.gather(*(p(done) for p in probes))

    return run


async def idle_probe(done: asyncio.Event) -> None:
    await done.wait()


async def renames(owner: Client, member: Client, room: str, count: int, with_module: bool) -> list[float]:
    """Without the module: seconds teammates see each forbidden name. With it: the same,
    which must be 0 (refused and never in the room's state or timeline)."""
    path = f"/v3/rooms/{quote(room)}/state/m.room.member/{quote(member.user_id)}"
    visible = []
    for _ in range(count):
        name = f"Nick {uuid.uuid4().hex[:6]}"
        content = await member.call("GET", path)
        answer = await member.call("PUT", path, {**content, "displayname": name}, ok=False)
        landed = time.monotonic()
        if with_module:
            assert answer["status"] == 403, answer
            seen = 0.0
            for _ in range(10):  # look for it for a while: a refused name must never show
                shown = (await owner.call("GET", path)).get("displayname")
                assert shown != name, f"{name} is visible"
                await asyncio.sleep(0.02)
            timeline = await owner.call("GET", f"/v3/rooms/{quote(room)}/messages", dir="b", limit="50")
            assert not any(e["content"].get("displayname") == name for e in timeline["chunk"]), f"{name} stored"
            visible.append(seen)
            continue
        while (await owner.call("GET", path)).get("displayname") == name:
            if time.monotonic() - landed > 60:
                raise RuntimeError(f"{name} was never put back")
            await asyncio.sleep(0.005)
        visible.append(time.monotonic() - landed)
    return visible


async def main(messages: int, rounds: int, count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-antispam-"))
    bridge_folder = folder / "bridge"
    bridge_folder.mkdir()
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(synapse, bridge_folder)
    port = synapse.port
    synapse = start_synapse(folder / "synapse", port, bridge, with_module=False)
    phases: list[tuple[bool, float]] = []  # (with the module, messages per second), in order
    latencies: dict[str, list[float]] = {}
    decisions: dict[str, list[float]] = {}
    trips: dict[str, list[float]] = {}
    rename_statuses: list[int] = []
    reset_visible: list[float] = []
    refused_visible: list[float] = []
    try:
        await make_bot_admin(synapse, bridge)
        bridge.start()
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            owner_acc, member_acc = await synapse.register_user("owner"), await synapse.register_user("member")
            owner = Client(http, synapse.url, owner_acc.user_id, owner_acc.access_token)
            member = Client(http, synapse.url, member_acc.user_id, member_acc.access_token)
            async with http.post(
                f"{bridge.api}/teams", json={"name": "Bench", "owner": owner.user_id}, headers=bridge.auth
            ) as r:
                team = await r.json()
            async with http.post(
                f"{bridge.api}/teams/{team['id']}/members", json={"user_id": member.user_id}, headers=bridge.auth
            ) as r:
                r.raise_for_status()
            async with http.put(
                f"{bridge.api}/users/{quote(member.user_id)}/profile",
                headers=bridge.auth,
                json={"first_name": "Ada", "last_name": "Lovelace"},
            ) as r:
                r.raise_for_status()
            space, general = team["space_id"], team["rooms"][0]["room_id"]
            for client in (owner, member):
                for room in (space, general):
                    await client.call("POST", f"/v3/join/{quote(room)}", {})
            path = f"/v3/rooms/{quote(general)}/state/m.room.member/{quote(member.user_id)}"
            deadline = time.monotonic() + 60
            while (await owner.call("GET", path)).get("displayname") != "Ada Lovelace":
                if time.monotonic() > deadline:
                    raise RuntimeError("the profile's name never showed")
                await asyncio.sleep(0.1)
            await throughput(member, general, 50, idle_probe)  # warm-up

            # Without, with, without, ... ending without. Names only in the first two phases:
            # after a restart of Synapse the bridge's requests cut by it are retried with back-off,
            # which would delay its resets, not the homeserver.
            for i in range(2 * rounds + 1):
                with_module, names = i % 2 == 1, i < 2
                phase = "with" if with_module else "without"
                if with_module != synapse_has_module(synapse):
                    synapse.stop()
                    synapse = start_synapse(folder / "synapse", port, bridge, with_module)
                    await throughput(member, general, 50, idle_probe)  # warm-up after the restart
                print(f"{phase} the module: {messages} messages …", flush=True)
                phases.append((with_module, await throughput(member, general, messages, idle_probe)))
                if names:
                    # The bridge lets its own profile writes pass until it has seen them in the room;
                    # after Synapse's restart its events may still be on the way.
                    await bridge_sees(http, bridge, general, member.user_id)
                    print(f"{phase} the module: {count} forbidden names …", flush=True)
                    (refused_visible if with_module else reset_visible).extend(
                        await renames(owner, member, general, count, with_module)
                    )

            # The latency phase: the module, Synapse's HTTP client traced, messages and renames.
            synapse.stop()
            synapse = start_synapse(folder / "synapse", port, bridge, with_module=True, traced=True)
            await throughput(member, general, 50, idle_probe)
            await bridge_sees(http, bridge, general, member.user_id)
            offset = synapse.log_path.stat().st_size
            print(f"with the module, traced: {messages} messages and renames …", flush=True)
            await throughput(
                member,
                general,
                messages,
                both(
                    decision_probe(http, bridge, member.user_id, general, latencies, decisions),
                    rename_load(member, general, rename_statuses),
                ),
            )
            with open(synapse.log_path, encoding="utf-8", errors="replace") as stream:
                stream.seek(offset)
                trips = round_trips(stream.read())
    finally:
        bridge.stop()
        synapse.stop()

    without = [rate for module, rate in phases if not module]
    with_ = [rate for module, rate in phases if module]
    # Each phase with the module against the mean of the phases without it either side.
    ratios = [phases[i][1] / statistics.mean([phases[i - 1][1], phases[i + 1][1]]) for i in range(1, len(phases), 2)]
    print()
    print(
        f"load: {CONCURRENCY} senders, {messages} messages per phase, {rounds} rounds, {os.cpu_count()} cores "
        f"shared with other work (1-minute load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"phases in order (msg/s):     {', '.join(f'{rate:.1f}' + (' (with)' if module else '') for module, rate in phases)}"
    )
    print(f"throughput without module:   {statistics.mean(without):7.1f} msg/s (mean)")
    print(f"throughput with module:      {statistics.mean(with_):7.1f} msg/s (mean)")
    print(
        f"ratio with/without:          {statistics.mean(with_) / statistics.mean(without):7.2f}   (goal >= 0.9); "
        f"each round against its neighbours: {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f})"
    )
    print(
        f"callbacks as Synapse sees them, at load (goal p99 < 5 ms; {rename_statuses.count(403)} of "
        f"{len(rename_statuses)} renames refused):"
    )
    for name in sorted(trips):
        lat = sorted(trips[name])
        print(
            f"  {name:22s} {len(lat):5d} calls  p50 {quantile(lat, 0.5) * 1000:6.2f} ms  "
            f"p99 {quantile(lat, 0.99) * 1000:6.2f} ms  max {lat[-1] * 1000:6.2f} ms"
        )
    print("probe from this process every 100 ms, same phase:")
    for name in sorted(latencies):
        lat, own = sorted(latencies[name]), sorted(decisions[name])
        print(
            f"  {name:22s} {len(lat):5d} calls  HTTP round trip p50 {quantile(lat, 0.5) * 1000:6.2f} ms  "
            f"p99 {quantile(lat, 0.99) * 1000:6.2f} ms; decision alone (Server-Timing) "
            f"p50 {quantile(own, 0.5) * 1000:6.2f} ms  p99 {quantile(own, 0.99) * 1000:6.2f} ms"
        )
    print(
        f"forbidden name visible, without module: median {statistics.median(reset_visible) * 1000:.0f} ms, "
        f"max {max(reset_visible) * 1000:.0f} ms ({len(reset_visible)} renames)"
    )
    print(
        f"forbidden name visible, with module:    never ({len(refused_visible)} renames refused, none in the "
        "room's state or timeline)"
    )


async def bridge_sees(http: aiohttp.ClientSession, bridge: BridgeUnderTest, room: str, user_id: str) -> None:
    """Wait until the bridge's own profile write no longer passes: it has seen the name in the
    room (names are kept in its memory only, so ask the question Synapse asks for a name
    change, which is refused once the write is no longer pending)."""
    url = f"{bridge.settings.appservice.address}{PATH}/user_may_join_room"
    headers = {"Authorization": f"Bearer {bridge.settings.antispam.shared_secret}"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        async with http.post(url, json={"user": user_id, "room": room, "is_invited": False}, headers=headers) as r:
            await r.read()
            if r.status == 403:  # refused: the lock holds again
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the bridge never saw its own write of the name in the room")


def synapse_has_module(synapse: LocalSynapse) -> bool:
    return "synapse_http_antispam" in synapse.config_path.read_text()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3, help="phases with the module (each between two without)")
    parser.add_argument("--renames", type=int, default=10)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.rounds, args.renames = 10, 1, 2
    asyncio.run(main(args.messages, args.rounds, args.renames))
