"""Benchmark: announcing a new policy version to N team members (default 100), and putting
back a display name, each against a baseline measured on the same Synapse in the same run.

- Announcement: the bridge is restarted with a new policy version and tells every member
  in their chat with the bot (bookkeeping: who was told, consent check). Baseline: the bot
  sends the same number of notices to the same rooms with no bookkeeping.
- Reset: a member renames themselves in a team room; time until a teammate sees the
  policy's name again.
  Baseline: time until the teammate sees a rename that the policy leaves alone.
  (Measured before the restart: Synapse backs off from an appservice that was down, so
  events reach a restarted bridge only at its next retry.)

    .venv/bin/python bench/policy_notices.py [--members 100] [--renames 10]

Absolute times depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import aiosqlite
from harness import Client, bridge_for, make_bot_admin

from clutto_bridge.demo.synapse import LocalSynapse

POLICY = "---\npublished: {day}\nreconsent: true\nsummary: Policy {v}.\n---\nText of {v}.\n"


async def gather_limited(coros, limit: int = 8):
    sem = asyncio.Semaphore(limit)

    async def one(c):
        async with sem:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def bot_notices(db: Path, version: str) -> int:
    async with aiosqlite.connect(db) as conn:
        cursor = await conn.execute("SELECT COUNT(*) FROM policy_notice WHERE version=?", (version,))
        return (await cursor.fetchone())[0]


async def main(members: int, renames: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="clutto-bench-"))
    synapse = LocalSynapse(folder / "synapse")
    texts = folder / "policy"
    texts.mkdir()
    (texts / "v1.md").write_text(POLICY.format(day="2026-01-01", v="v1"))
    (texts / "v2.md").write_text(POLICY.format(day="2026-02-01", v="v2"))
    bridge = bridge_for(synapse, folder, **{"policy.consent.texts": str(texts), "policy.version": "v1"})
    settings = bridge.settings
    db = folder / "clutto.db"
    synapse.write_config([folder / "registration.yaml"])
    synapse.start()
    try:
        await make_bot_admin(synapse, bridge)
        bot_id = settings.bot_mxid
        bridge.start()
        api, auth = bridge.api, bridge.auth
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            owner_acc = await synapse.register_user("bench-owner")
            owner = Client(http, synapse.url, owner_acc.user_id, owner_acc.access_token)
            async with http.post(f"{api}/teams", json={"name": "Bench", "owner": owner.user_id}, headers=auth) as r:
                team = await r.json()
            space = team["space_id"]
            general = team["rooms"][0]["room_id"]
            await owner.call("POST", f"/v3/join/{quote(space)}", {})
            await owner.call("POST", f"/v3/join/{quote(general)}", {})

            print(f"Registering and adding {members} members …")
            accounts = await gather_limited([synapse.register_user(f"m{i}") for i in range(members)])
            clients = [Client(http, synapse.url, a.user_id, a.access_token) for a in accounts]
            for i, c in enumerate(clients):
                async with http.post(
                    f"{api}/teams/{team['id']}/members", json={"user_id": c.user_id}, headers=auth
                ) as r:
                    r.raise_for_status()
                await c.call("POST", f"/v3/join/{quote(space)}", {})
                print(f"  {i + 1}/{members}", end="\r", flush=True)
            print()
            deadline = time.monotonic() + 600
            while await bot_notices(db, "v1") < members + 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)  # welcome messages (each opens a chat with the bot)
            async with aiosqlite.connect(db) as conn:
                rooms = [row[0] for row in await (await conn.execute("SELECT room_id FROM management_room")).fetchall()]

            print(f"Reset of a display name, {renames} times …")
            member = clients[0]
            async with http.put(
                f"{api}/users/{quote(member.user_id)}/profile",
                headers=auth,
                json={"first_name": "Ada", "last_name": "Lovelace"},
            ) as r:
                r.raise_for_status()
            await member.call("POST", f"/v3/join/{quote(general)}", {})

            async def member_event(user_id: str) -> dict:
                return await owner.call(
                    "GET", f"/v3/rooms/{quote(general)}/state/m.room.member/{quote(user_id)}", format="event"
                )

            async def rename_in_room(client: Client, name: str) -> None:
                """A per-room name: one membership event, no background propagation on the homeserver."""
                path = f"/v3/rooms/{quote(general)}/state/m.room.member/{quote(client.user_id)}"
                content = await client.call("GET", path)
                await client.call("PUT", path, {**content, "displayname": name})

            async def renamed_until(user_id: str, before: str, name: str) -> float:
                """Seconds until the room shows a membership newer than ``before`` with ``name``."""
                t0 = time.monotonic()
                while True:
                    event = await member_event(user_id)
                    if event["event_id"] != before and event["content"].get("displayname") == name:
                        return time.monotonic() - t0
                    if time.monotonic() - t0 > 60:
                        raise RuntimeError(f"{name!r} never shown")
                    await asyncio.sleep(0.02)

            await renamed_until(member.user_id, "", "Ada Lovelace")
            reset = []
            for i in range(renames):
                before = (await member_event(member.user_id))["event_id"]
                start = time.monotonic()
                await rename_in_room(member, f"Nick {i}")
                await renamed_until(member.user_id, before, "Ada Lovelace")
                reset.append(time.monotonic() - start)

            print("Baseline: a member without a profile renames themselves (nothing to enforce) …")
            plain = clients[1]
            await plain.call("POST", f"/v3/join/{quote(general)}", {})
            renamed = []
            for i in range(renames):
                before = (await member_event(plain.user_id))["event_id"]
                start = time.monotonic()
                await rename_in_room(plain, f"Plain {i}")
                await renamed_until(plain.user_id, before, f"Plain {i}")
                renamed.append(time.monotonic() - start)

            print("Baseline: the bot sends one notice to each of those chats …")
            bot = Client(http, synapse.url, bot_id, settings.appservice.as_token)
            start = time.monotonic()
            await gather_limited(
                [
                    bot.call(
                        "PUT",
                        f"/v3/rooms/{quote(room)}/send/m.room.message/base{i}",
                        {"msgtype": "m.notice", "body": "baseline"},
                    )
                    for i, room in enumerate(rooms)
                ],
                1,
            )
            baseline_s = time.monotonic() - start

            print("Announcement of policy v2 after a restart …")
            bridge.stop()
            bridge.reconfigure(**{"policy.version": "v2"})
            bridge.start()
            start = time.monotonic()
            while await bot_notices(db, "v2") < members + 1:
                if time.monotonic() - start > 900:
                    raise RuntimeError("announcement did not finish")
                await asyncio.sleep(0.2)
            await bridge.ready(http)
            async with aiosqlite.connect(db) as conn:
                cursor = await conn.execute("SELECT MIN(sent_at), MAX(sent_at) FROM policy_notice WHERE version='v2'")
                first_ms, last_ms = await cursor.fetchone()
            announce_s = (last_ms - first_ms) / 1000  # the bridge's own clock: start-up excluded

        per_member = announce_s / members  # intervals between the first and the last of members + 1
        per_baseline = baseline_s / len(rooms)
        print()
        print(f"members told:                      {members + 1}")
        print(f"announcement:                      {announce_s:7.1f} s  {per_member * 1000:7.1f} ms per member")
        print(f"baseline, plain notices:           {baseline_s:7.1f} s  {per_baseline * 1000:7.1f} ms per message")
        print(f"announcement ratio bridge/baseline: {per_member / per_baseline:.2f}")
        r_med, b_med = statistics.median(reset), statistics.median(renamed)
        print(f"rename put back and visible:       median {r_med * 1000:7.0f} ms")
        print(f"baseline, rename visible:          median {b_med * 1000:7.0f} ms")
        print(f"reset latency ratio:               {r_med / b_med:.2f}")
    finally:
        bridge.stop()
        synapse.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--renames", type=int, default=10)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds (what the test suite runs; no figures to quote)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.members, args.renames = 2, 1
    asyncio.run(main(args.members, args.renames))
