"""Benchmark: the bot in end-to-end encrypted rooms (issue 24), each figure against a baseline
measured on the same Synapse and bridge in the same run. Every member is a matrix-nio client
with its ``e2e`` extra (tests/integration/e2ee_member.py), in encrypted and plain rooms alike,
so the clients cost the same on both sides.

- Commands: ``--members`` members each send ``--commands`` commands, one after another, in
  their encrypted chat with the bot; as many other members do the same in plain chats. Per
  phase: commands per second (all members at once) and reply latency p50/p99 (sent to reply
  read). Phases alternate which kind goes first, ``--rounds`` times each.
- First message (Olm session setup): an encrypted team room with ``--sizes`` members, all
  fresh devices with keys uploaded (never seen by the bot). The owner sends a command there;
  the bot's first reply must claim a one-time key, make an Olm session and send the room key
  to every member's device. Baseline: the next command in the same room (session shared).
  Fresh accounts every round, so every round sets up every session.
- Crypto store and memory: ``--events`` encrypted messages in an encrypted team room from
  ``SENDERS`` members, every ``events/sessions``-th one under a new Megolm session. Per round:
  rows and bytes the bot's inbound Megolm sessions add to the store (mautrix's
  ``crypto_megolm_inbound_session``, and the database file), scaled to 1,000 sessions; the
  bridge process's RSS before the first round and after each.

    .venv/bin/python bench/e2ee.py [--members 10] [--commands 20] [--sizes 10,50,100]
                                   [--sessions 1000] [--events 10000] [--rounds 3] [--smoke]

The commands are ones the bot does not know (it answers quoting them): the lightest reply,
so encryption's share of the work is the largest it can be. Absolute times depend on the
machine (2 cores shared with Synapse and the clients here); compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from harness import BridgeUnderTest, bridge_for, make_bot_admin
from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessage
from nio.responses import RoomCreateResponse, RoomSendResponse, SyncResponse

from clutto_bridge.demo.synapse import LocalSynapse

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
SENDERS = 4  # members sending at once in the store and memory phase


class Member:
    """A matrix-nio client with E2EE, logged in from a shared-secret registration (no password
    hashing per login), its keys uploaded; reads the timeline as it syncs."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.user_id = client.user_id
        self.seen: list[tuple[str, RoomMessage]] = []  # (room, message) read so far

    @classmethod
    async def new(cls, synapse: LocalSynapse, http: aiohttp.ClientSession, folder: Path, name: str) -> Member:
        account = await synapse.register_user(f"{name}-{secrets.token_hex(3)}")
        async with http.get(
            f"{synapse.url}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {account.access_token}"},
        ) as r:
            device_id = (await r.json())["device_id"]
        store = folder / "stores" / account.user_id
        store.mkdir(parents=True)
        client = AsyncClient(
            synapse.url,
            account.user_id,
            device_id=device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        client.restore_login(account.user_id, device_id, account.access_token)
        await client.keys_upload()
        member = cls(client)
        await member.sync()
        return member

    async def sync(self, timeout_ms: int = 0) -> None:
        answer = await self.client.sync(timeout=timeout_ms)
        if not isinstance(answer, SyncResponse):
            raise RuntimeError(f"sync failed: {answer}")
        for room_id, room in answer.rooms.join.items():
            self.seen.extend(
                (room_id, e)
                for e in room.timeline.events
                if isinstance(e, RoomMessage) and not isinstance(e, MegolmEvent)
            )
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())
        await self.client.send_to_device_messages()

    async def send(self, room_id: str, text: str) -> None:
        answer = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}, ignore_unverified_devices=True
        )
        if not isinstance(answer, RoomSendResponse):
            raise RuntimeError(f"send failed: {answer}")

    async def wait_for(self, room_id: str, sender: str, contains: str, timeout: float = 120.0) -> float:
        """Until a readable message in the room from ``sender`` contains ``contains``; the monotonic time then."""
        deadline = time.monotonic() + timeout
        while True:
            if any(r == room_id and e.sender == sender and contains in getattr(e, "body", "") for r, e in self.seen):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.user_id} never read {contains!r} from {sender}")
            await self.sync(timeout_ms=5000)

    async def chat_with(self, bot: str, encrypted: bool) -> str:
        answer = await self.client.room_create(
            invite=[bot], is_direct=True, initial_state=[ENCRYPTION] if encrypted else []
        )
        if not isinstance(answer, RoomCreateResponse):
            raise RuntimeError(f"room creation failed: {answer}")
        return answer.room_id

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)

    async def close(self) -> None:
        await self.client.close()


async def limited(coros, limit: int = 8) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(c):
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}"


# --- commands per second, encrypted against plain ------------------------------------------------


async def command_phase(chats: list[tuple[Member, str]], bot: str, commands: int) -> tuple[float, list[float]]:
    """All members at once, each ``commands`` commands one after another; (commands/s, latencies)."""
    latencies: list[float] = []

    async def one(member: Member, room_id: str) -> None:
        for _ in range(commands):
            token = f"ping{secrets.token_hex(4)}"
            start = time.monotonic()
            await member.send(room_id, token)
            latencies.append(await member.wait_for(room_id, bot, token) - start)

    start = time.monotonic()
    await asyncio.gather(*(one(m, r) for m, r in chats))
    return len(chats) * commands / (time.monotonic() - start), latencies


async def commands_bench(make, bot: str, members: int, commands: int, rounds: int) -> dict[str, list]:
    chats: dict[bool, list[tuple[Member, str]]] = {}
    for encrypted in (True, False):
        people = await limited([make(f"{'e' if encrypted else 'p'}{i}") for i in range(members)])
        rooms = await limited([m.chat_with(bot, encrypted) for m in people])
        chats[encrypted] = list(zip(people, rooms))
        # The bot's greeting, then one command each: rooms joined, sessions shared, caches warm.
        await limited([m.wait_for(room, bot, "help") for m, room in chats[encrypted]])
        await command_phase(chats[encrypted], bot, 1)
    result: dict[str, list] = {
        "enc_rate": [],
        "plain_rate": [],
        "enc_p50": [],
        "plain_p50": [],
        "enc_p99": [],
        "plain_p99": [],
    }
    for r in range(rounds):
        for encrypted in (True, False) if r % 2 == 0 else (False, True):
            rate, lat = await command_phase(chats[encrypted], bot, commands)
            kind = "enc" if encrypted else "plain"
            result[f"{kind}_rate"].append(rate)
            result[f"{kind}_p50"].append(percentile(lat, 50))
            result[f"{kind}_p99"].append(percentile(lat, 99))
            print(
                f"  round {r + 1} {kind:5}: {rate:6.1f} commands/s  p50 {percentile(lat, 50) * 1000:6.0f} ms  "
                f"p99 {percentile(lat, 99) * 1000:6.0f} ms"
            )
    return result


# --- the first message in a large encrypted room -------------------------------------------------


async def first_message(make, bridge: BridgeUnderTest, http: aiohttp.ClientSession, size: int) -> tuple[float, float]:
    """Seconds from the owner's command to the bot's reply read: first in the room (Olm sessions
    with ``size`` fresh devices), and the next one (session already shared)."""
    people = await limited([make(f"s{size}x") for _ in range(size)])
    owner, others = people[0], people[1:]
    async with http.post(
        f"{bridge.api}/teams",
        headers=bridge.auth,
        json={"name": f"Big {size} {secrets.token_hex(2)}", "owner": owner.user_id},
    ) as r:
        team = await r.json()

    async def add(member: Member) -> None:
        async with http.post(
            f"{bridge.api}/teams/{team['id']}/members", headers=bridge.auth, json={"user_id": member.user_id}
        ) as r:
            r.raise_for_status()

    general = team["rooms"][0]["room_id"]
    await owner.join(team["space_id"])
    await owner.join(general)
    await owner.sync()
    # The owner's room key reaches the bot before the room fills: sent later, to 100 devices, it
    # goes in several concurrent requests, and Synapse can then skip the bot's part (see docs/e2ee.md).
    await owner.send(general, "hello")
    await limited([add(m) for m in others])
    await owner.sync()
    timings = []
    for _ in range(2):
        token = f"team info {secrets.token_hex(3)}"
        await owner.send(general, f"!clutto {token}")  # the owner's own key sharing is not timed
        start = time.monotonic()
        timings.append(await owner.wait_for(general, bridge.settings.bot_mxid, "Space:", timeout=300) - start)
        owner.seen.clear()
    for member in people:
        await member.close()
    return timings[0], timings[1]


# --- crypto store size and memory ----------------------------------------------------------------


def store_size(db: Path) -> tuple[int, int, int]:
    """(inbound Megolm sessions, bytes of their rows' values, bytes of the database file's pages)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(crypto_megolm_inbound_session)")]
        total = " + ".join(f"COALESCE(LENGTH({c}), 0)" for c in columns)
        rows, values = conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM({total}), 0) FROM crypto_megolm_inbound_session"
        ).fetchone()
        pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    return rows, values, pages


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def store_and_memory(
    make, bridge: BridgeUnderTest, http: aiohttp.ClientSession, events: int, sessions: int, rounds: int
) -> tuple[list[tuple[int, int, int]], list[float]]:
    people = await limited([make("chatter") for _ in range(SENDERS)])
    owner = people[0]
    async with http.post(
        f"{bridge.api}/teams",
        headers=bridge.auth,
        json={"name": f"Chatter {secrets.token_hex(2)}", "owner": owner.user_id},
    ) as r:
        team = await r.json()
    for member in people[1:]:
        async with http.post(
            f"{bridge.api}/teams/{team['id']}/members", headers=bridge.auth, json={"user_id": member.user_id}
        ) as r:
            r.raise_for_status()
    general = team["rooms"][0]["room_id"]
    for member in people:
        await member.join(general)
    for member in people:
        await member.sync()
    bot = bridge.settings.bot_mxid
    db = bridge.folder / "clutto.db"
    assert bridge.process is not None
    per_round = events // rounds
    every = max(1, per_round // max(1, sessions // rounds))  # messages per Megolm session
    growth, rss = [], [rss_mib(bridge.process.pid)]
    for r in range(rounds):
        before = store_size(db)

        async def chatter(index: int, member: Member) -> None:
            for i in range(index, per_round, SENDERS):
                if i % every == 0:
                    member.client.invalidate_outbound_session(general)  # the next message: a new session
                await member.send(general, f"message {r}.{i}")

        await asyncio.gather(*(chatter(i, m) for i, m in enumerate(people)))
        # The room's events are handled in order: the reply to this comes after every message.
        token = secrets.token_hex(3)
        await owner.send(general, f"!clutto team info {token}")
        await owner.wait_for(general, bot, "Space:", timeout=900)
        owner.seen.clear()
        after = store_size(db)
        growth.append(tuple(a - b for a, b in zip(after, before)))
        rss.append(rss_mib(bridge.process.pid))
        print(
            f"  round {r + 1}: +{growth[-1][0]} sessions, +{growth[-1][1]} bytes of rows, "
            f"+{growth[-1][2]} bytes of file; bridge RSS {rss[-1]:.1f} MiB"
        )
    for member in people:
        await member.close()
    return growth, rss


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-e2ee-"))
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(synapse, folder, **{"policy.encryption": "default"})
    synapse.write_config([folder / "registration.yaml"])
    synapse.start()
    made: list[Member] = []
    try:
        await make_bot_admin(synapse, bridge)
        bridge.start()
        bot = bridge.settings.bot_mxid
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)

            async def make(name: str) -> Member:
                member = await Member.new(synapse, http, folder, name)
                made.append(member)
                return member

            print(f"Commands: {args.members} members x {args.commands} commands, encrypted and plain chats …")
            cmd = await commands_bench(make, bot, args.members, args.commands, args.rounds)
            sizes = [int(s) for s in args.sizes.split(",")]
            first: dict[int, list[tuple[float, float]]] = {s: [] for s in sizes}
            for r in range(args.rounds):
                for size in sizes:
                    first[size].append(await first_message(make, bridge, http, size))
                    print(
                        f"  first message, round {r + 1}, {size} members: {first[size][-1][0] * 1000:.0f} ms "
                        f"(next: {first[size][-1][1] * 1000:.0f} ms)"
                    )
            print(f"Store and memory: {args.events} encrypted events, {args.sessions} Megolm sessions …")
            growth, rss = await store_and_memory(make, bridge, http, args.events, args.sessions, args.rounds)
        report(args, cmd, first, growth, rss)
    finally:
        for member in made:
            await member.close()
        bridge.stop()
        synapse.stop()


def report(
    args,
    cmd: dict[str, list],
    first: dict[int, list[tuple[float, float]]],
    growth: list[tuple[int, int, int]],
    rss: list[float],
) -> None:
    med = statistics.median
    print()
    print(
        f"load: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; medians of {args.rounds} rounds "
        "(baseline spread in brackets)"
    )
    print(
        f"commands/s      encrypted {med(cmd['enc_rate']):6.1f}   plain {med(cmd['plain_rate']):6.1f} "
        f"[{spread(cmd['plain_rate'])}]   ratio {med(cmd['enc_rate']) / med(cmd['plain_rate']):.2f} (goal >= 0.8)"
    )
    for p in ("p50", "p99"):
        e, b = med(cmd[f"enc_{p}"]), med(cmd[f"plain_{p}"])
        print(
            f"reply {p} ms    encrypted {e * 1000:6.0f}   plain {b * 1000:6.0f} "
            f"[{spread([v * 1000 for v in cmd[f'plain_{p}']])}]   ratio {e / b:.2f}"
            + ("  (goal <= 1.5)" if p == "p99" else "")
        )
    # Each round's two phases run back to back: their ratio shrugs off load that changes between rounds.
    for key, goal in (("rate", ">= 0.8"), ("p50", ""), ("p99", "<= 1.5")):
        paired = [e / b for e, b in zip(cmd[f"enc_{key}"], cmd[f"plain_{key}"])]
        print(
            f"per-round ratio {key:4}: median {med(paired):.2f} of {', '.join(f'{v:.2f}' for v in paired)}"
            + (f" (goal {goal})" if goal else "")
        )
    for size, pairs in first.items():
        f, n = med([p[0] for p in pairs]), med([p[1] for p in pairs])
        print(
            f"first reply, {size:3} members: {f * 1000:7.0f} ms   next reply {n * 1000:5.0f} ms "
            f"[{spread([p[1] * 1000 for p in pairs])}]   setup {(f - n) * 1000:7.0f} ms "
            f"({(f - n) * 1000 / max(1, size):.1f} ms per member)"
        )
    per_session = [g[1] / max(1, g[0]) for g in growth]
    print(
        f"crypto store per 1,000 Megolm sessions: {med(per_session) * 1000 / 1024:.0f} KiB of rows "
        f"(sessions added per round: {[g[0] for g in growth]}); the whole database file grew "
        f"{med([g[2] for g in growth]) / 2**20:.1f} MiB per round of {args.events // args.rounds} events "
        "(every table: the inbox and the retention references too)"
    )
    print(
        f"bridge RSS, MiB: before {rss[0]:.1f}, after each round {', '.join(f'{v:.1f}' for v in rss[1:])} "
        f"({args.events} events)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny size of everything, one round (a minute or two)")
    args = parser.parse_args()
    if args.smoke:
        args.members, args.commands, args.sizes, args.sessions, args.events, args.rounds = 2, 3, "2,5", 5, 20, 1
    logging.getLogger("nio").setLevel(logging.ERROR)  # its warnings about the sessions it sets up
    asyncio.run(main(args))
