#!/usr/bin/env python3
"""Kill the bridge at random points of its destructive work and check the promises held.

Each run seeds old and new messages (some with media) in two rooms of a team, starts a
retention sweep (or, every fourth run, an export), kills the bridge process with SIGKILL
or SIGTERM after a random delay, starts it again and waits for the job to finish. Then,
as a member sees it on the homeserver:

- old messages still visible with their content (must be 0),
- newer messages removed or changed (must be 0),
- media of removed messages still downloadable (must be 0),
- for an export: the manifest's SHA-256 of every file matches the file on disk,

and the time from the restart until the job was done. Every fifth run instead kills a
``POST /teams`` (odd fifths) or an invite (``POST /teams/{id}/members``, even fifths)
mid-way, restarts, repeats the request as a client would after an error, and counts:

- rooms on the homeserver (admin API room list) made since and belonging to no team (must be 0),
- team rooms the invitee has no invite to, as their own sync shows (must be 0).

Exits non-zero on any violation.

    .venv/bin/python bench/faults.py [--runs 30] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp

from harness import BridgeUnderTest, bridge_for, make_bot_admin

from clutto_bridge.demo.synapse import LocalSynapse

DAY = 86_400_000
OLD, NEW, MEDIA = 24, 3, 4  # per room and run


@dataclass
class Outcome:
    run: int
    kind: str
    signal: str
    killed_after: float
    old_visible: int = 0
    new_changed: int = 0
    media_left: int = 0
    manifest_bad: int = 0
    orphans: int = 0  # rooms made since the run began that belong to no team
    missing_invites: int = 0
    resume_s: float = 0.0
    state: str = ""
    mid_way: bool = False  # the job was still running when the signal was sent

    @property
    def violations(self) -> int:
        return (self.old_visible + self.new_changed + self.media_left + self.manifest_bad + self.orphans
                + self.missing_invites + (self.state != "done"))


class Homeserver:
    def __init__(self, http: aiohttp.ClientSession, url: str, as_token: str, bot: str) -> None:
        self.http, self.url, self.bot = http, url, bot
        self.auth = {"Authorization": f"Bearer {as_token}"}

    async def upload(self, data: bytes) -> str:
        async with self.http.post(f"{self.url}/_matrix/media/v3/upload?filename=x.png", data=data,
                                  headers={**self.auth, "Content-Type": "image/png"}) as r:
            r.raise_for_status()
            return (await r.json())["content_uri"]

    async def send(self, room: str, content: dict, ts: int) -> str:
        url = (f"{self.url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{secrets.token_hex(8)}"
               f"?ts={ts}&user_id={quote(self.bot)}")
        async with self.http.put(url, json=content, headers=self.auth) as r:
            r.raise_for_status()
            return (await r.json())["event_id"]

    async def rooms(self) -> set[str]:
        """Every room on the homeserver (Synapse admin API; the bot is an admin)."""
        rooms: set[str] = set()
        start: int | None = 0
        while start is not None:
            async with self.http.get(f"{self.url}/_synapse/admin/v1/rooms?limit=500&from={start}", headers=self.auth) as r:
                r.raise_for_status()
                page = await r.json()
            rooms |= {room["room_id"] for room in page["rooms"]}
            start = page.get("next_batch")
        return rooms

    async def invited_to(self, token: str) -> set[str]:
        async with self.http.get(f"{self.url}/_matrix/client/v3/sync?timeout=0",
                                 headers={"Authorization": f"Bearer {token}"}) as r:
            r.raise_for_status()
            return set((await r.json()).get("rooms", {}).get("invite", {}))

    async def media_exists(self, mxc: str, token: str) -> bool:
        server, media = mxc.removeprefix("mxc://").split("/", 1)
        async with self.http.get(f"{self.url}/_matrix/client/v1/media/download/{server}/{media}",
                                 headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status == 200


async def timeline(http: aiohttp.ClientSession, url: str, token: str, room: str) -> dict[str, dict]:
    events: dict[str, dict] = {}
    start = None
    while True:
        query = f"dir=f&limit=200" + (f"&from={quote(start)}" if start else "")
        async with http.get(f"{url}/_matrix/client/v3/rooms/{quote(room)}/messages?{query}",
                            headers={"Authorization": f"Bearer {token}"}) as r:
            r.raise_for_status()
            page = await r.json()
        for event in page.get("chunk", []):
            events[event["event_id"]] = event
        if not page.get("chunk") or not page.get("end"):
            return events
        start = page["end"]


async def call(http: aiohttp.ClientSession, bridge: BridgeUnderTest, method: str, path: str, body=None) -> dict:
    async with http.request(method, bridge.api + path, json=body, headers=bridge.auth) as r:
        data = await r.json(content_type=None)
        if r.status >= 400:
            raise RuntimeError(f"{method} {path}: {r.status} {data}")
        return data


async def wait_done(http: aiohttp.ClientSession, bridge: BridgeUnderTest, team: str, job: int, limit: float = 300) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        current = await call(http, bridge, "GET", f"/teams/{team}/jobs/{job}")
        if current["state"] in ("done", "failed"):
            return current
        await asyncio.sleep(0.2)
    return current


def manifest_mismatches(folder: Path) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    bad = 0
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            bad += 1
    return bad


async def kill_during(http, bridge: BridgeUnderTest, rng: random.Random, method: str, path: str, body: dict,
                      delay: float) -> tuple[signal.Signals, float, bool]:
    """Send the request, kill the bridge ``delay`` seconds later, start it again; (signal, restart
    time, whether the request was still unanswered when the signal went)."""
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    request = asyncio.create_task(call(http, bridge, method, path, body))
    await asyncio.sleep(delay)
    mid_way = not request.done()
    bridge.process.send_signal(sig)
    await asyncio.to_thread(bridge.process.wait, 60)
    try:
        await request
    except (RuntimeError, aiohttp.ClientError):
        pass  # answered with an error or cut off: the client repeats it below
    restarted = time.monotonic()
    bridge.start()
    await bridge.ready(http)
    return sig, restarted, mid_way


async def settled(http, bridge: BridgeUnderTest, name: str, limit: float = 120) -> dict | None:
    """The team named ``name`` once its creation finished (the restart finishes it), or None."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        team = next((t for t in (await call(http, bridge, "GET", "/teams"))["teams"] if t["name"] == name), None)
        if team is None or team["state"] != "creating":
            return team
        await asyncio.sleep(0.2)
    return team


async def create_run(n: int, rng: random.Random, http, hs: Homeserver, bridge: BridgeUnderTest, owner: str) -> Outcome:
    before = await hs.rooms()
    name, delay = f"Faults {n} {secrets.token_hex(2)}", rng.uniform(0.05, 2.5)
    sig, restarted, mid_way = await kill_during(http, bridge, rng, "POST", "/teams", {"name": name, "owner": owner}, delay)
    team = await settled(http, bridge, name)
    if team is None:  # killed before the team was recorded: the client's repeat creates it
        team = await call(http, bridge, "POST", "/teams", {"name": name, "owner": owner})
    outcome = Outcome(n, "create", sig.name, round(delay, 2), resume_s=time.monotonic() - restarted,
                      state="done" if team["state"] == "active" else team["state"], mid_way=mid_way)
    teams = (await call(http, bridge, "GET", "/teams"))["teams"]
    known = {t["space_id"] for t in teams} | {r["room_id"] for t in teams for r in t["rooms"]}
    outcome.orphans = len(await hs.rooms() - before - known)
    return outcome


async def invite_run(n: int, rng: random.Random, http, hs: Homeserver, synapse: LocalSynapse, bridge: BridgeUnderTest,
                     team: dict) -> Outcome:
    invitee = await synapse.register_user(f"faults-{n}-{secrets.token_hex(2)}")
    delay = rng.uniform(0.02, 0.5)
    path = f"/teams/{team['id']}/members"
    sig, restarted, mid_way = await kill_during(http, bridge, rng, "POST", path, {"user_id": invitee.user_id}, delay)
    try:
        await call(http, bridge, "POST", path, {"user_id": invitee.user_id})  # the client's repeat
    except RuntimeError as e:
        if " 409 " not in str(e):  # "already a member": the first one had finished
            raise
    rooms = {team["space_id"], *(r["room_id"] for r in team["rooms"])}
    outcome = Outcome(n, "invite", sig.name, round(delay, 2), resume_s=time.monotonic() - restarted, state="done",
                      mid_way=mid_way)
    outcome.missing_invites = len(rooms - await hs.invited_to(invitee.access_token))
    return outcome


async def one_run(n: int, rng: random.Random, http, hs: Homeserver, bridge: BridgeUnderTest, team: dict,
                  rooms: list[str], owner_token: str) -> Outcome:
    now = int(time.time() * 1000)
    old_ids, new_ids, old_media = set(), {}, []
    for room in rooms:
        for i in range(OLD):
            ts = now - (40 + rng.randint(0, 30)) * DAY + i
            if i < MEDIA:
                mxc = await hs.upload(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64))
                old_media.append(mxc)
                content = {"msgtype": "m.image", "body": f"old {n}.{i}.png", "url": mxc}
            else:
                content = {"msgtype": "m.text", "body": f"old {n}.{i}"}
            old_ids.add(await hs.send(room, content, ts))
        for i in range(NEW):
            content = {"msgtype": "m.text", "body": f"new {n}.{i}"}
            new_ids[await hs.send(room, content, now - rng.randint(0, 5) * DAY)] = content["body"]
    kind = "export" if n % 4 == 3 else "sweep"
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    delay = rng.uniform(0.05, 2.5)
    path = "/exports" if kind == "export" else "/retention/sweep"
    job = await call(http, bridge, "POST", f"/teams/{team['id']}{path}")
    await asyncio.sleep(delay)  # a random moment of the job: the fault being injected
    before = await call(http, bridge, "GET", f"/teams/{team['id']}/jobs/{job['id']}")
    bridge.process.send_signal(sig)
    await asyncio.to_thread(bridge.process.wait, 60)
    restarted = time.monotonic()
    bridge.start()
    await bridge.ready(http)
    if kind == "export":
        done = await wait_done(http, bridge, team["id"], job["id"])
    else:
        done = await wait_done(http, bridge, team["id"], job["id"])
        if done["state"] == "done" and done["progress"].get("room_index", 0) < len(done["progress"].get("rooms", [])):
            done["state"] = "incomplete"
    outcome = Outcome(n, kind, sig.name, round(delay, 2), resume_s=time.monotonic() - restarted, state=done["state"],
                      mid_way=before["state"] not in ("done", "failed"))
    if kind == "export":
        outcome.manifest_bad = manifest_mismatches(Path(done["progress"]["path"]))
        return outcome
    seen: dict[str, dict] = {}
    for room in rooms:
        seen.update(await timeline(http, hs.url, owner_token, room))
    outcome.old_visible = sum(1 for e in old_ids if e in seen and seen[e].get("content"))
    outcome.new_changed = sum(1 for e, body in new_ids.items() if (seen.get(e) or {}).get("content", {}).get("body") != body)
    for mxc in old_media:
        outcome.media_left += await hs.media_exists(mxc, owner_token)
    return outcome


async def main(runs: int, seed: int) -> int:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="clutto-faults-"))
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(synapse, folder, **{"jobs.homeserver_rate": 40, "policy.retention.batch_size": 8,
                                            "policy.retention.purge_slice": "3d", "export.directory": str(folder / "exports")})
    synapse.write_config([folder / "registration.yaml"])
    synapse.start()
    outcomes: list[Outcome] = []
    try:
        await make_bot_admin(synapse, bridge)
        bridge.start()
        async with aiohttp.ClientSession() as http:
            await bridge.ready(http)
            owner = await synapse.register_user("faults-owner")
            team = await call(http, bridge, "POST", "/teams", {"name": "Faults", "owner": owner.user_id})
            rooms = [r["room_id"] for r in team["rooms"]]
            auth = {"Authorization": f"Bearer {owner.access_token}"}
            for room in [team["space_id"], *rooms]:
                async with http.post(f"{synapse.url}/_matrix/client/v3/join/{quote(room)}", json={}, headers=auth) as r:
                    r.raise_for_status()
            await call(http, bridge, "PUT", f"/teams/{team['id']}/retention", {"max_lifetime": "30d"})
            hs = Homeserver(http, synapse.url, bridge.settings.appservice.as_token, bridge.settings.bot_mxid)
            print(f"{runs} runs, seed {seed}; {OLD} old and {NEW} new messages per room and run, 2 rooms")
            print(f"{'run':>4} {'job':<7} {'signal':<8} {'after s':>7} {'old':>4} {'new':>4} {'media':>5} "
                  f"{'files':>5} {'orphan':>6} {'uninv':>5} {'resume s':>8}  state (mid-way?)")
            for n in range(runs):
                if n % 5 == 4:
                    o = await (create_run(n, rng, http, hs, bridge, owner.user_id) if n % 10 == 4 else
                               invite_run(n, rng, http, hs, synapse, bridge, team))
                else:
                    o = await one_run(n, rng, http, hs, bridge, team, rooms, owner.access_token)
                outcomes.append(o)
                print(f"{o.run:>4} {o.kind:<7} {o.signal:<8} {o.killed_after:>7} {o.old_visible:>4} {o.new_changed:>4} "
                      f"{o.media_left:>5} {o.manifest_bad:>5} {o.orphans:>6} {o.missing_invites:>5} {o.resume_s:>8.1f}  "
                      f"{o.state} ({'yes' if o.mid_way else 'no'})", flush=True)
    finally:
        bridge.stop()
        synapse.stop()
    bad = [o for o in outcomes if o.violations]
    resumes = sorted(o.resume_s for o in outcomes)
    median = resumes[len(resumes) // 2] if resumes else 0
    print(f"\n{len(outcomes)} interruptions ({sum(o.kind == 'sweep' for o in outcomes)} sweeps, "
          f"{sum(o.kind == 'export' for o in outcomes)} exports, {sum(o.kind == 'create' for o in outcomes)} team creates, "
          f"{sum(o.kind == 'invite' for o in outcomes)} invites, {sum(o.mid_way for o in outcomes)} of them mid-way): "
          f"{len(bad)} with a violation; "
          f"old visible {sum(o.old_visible for o in outcomes)}, newer changed {sum(o.new_changed for o in outcomes)}, "
          f"media left {sum(o.media_left for o in outcomes)}, export files wrong {sum(o.manifest_bad for o in outcomes)}, "
          f"orphan rooms {sum(o.orphans for o in outcomes)}, invites missing {sum(o.missing_invites for o in outcomes)}; "
          f"resume (restart to done) median {median:.1f}s, max {max(resumes, default=0):.1f}s")
    return 1 if bad or len(outcomes) < runs else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.seed)))
