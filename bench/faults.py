#!/usr/bin/env python3
"""Interrupt the bridge and the homeserver at random points and check the promises held.

Runs take turns between seven faults:

- **sweep** and **export**: old and new messages (some with media) are seeded in two rooms
  of a team, a retention sweep or an export starts, and the bridge process is killed with
  SIGKILL or SIGTERM after a random delay, started again, and the job waited for. Then, as
  a member sees it on the homeserver: old messages still visible with their content, newer
  messages removed or changed, media of removed messages still downloadable, and for an
  export the manifest's SHA-256 of every file against the file on disk (all must be 0);
- **commands**: a member sends commands to the bot in their chat with it and the bridge is
  killed (SIGKILL or SIGTERM) after a random delay while they are handled;
- **hs-restart**: Synapse is restarted cleanly between two of a member's commands (on
  SQLite it then numbers its transactions from 1 again);
- **backlog**: the bridge is frozen (SIGSTOP) while a member sends 100 commands padded to
  60 KB each, so Synapse sends them as one transaction of several MiB when it thaws.

- **create** and **invite**: a ``POST /teams`` or an invite (``POST /teams/{id}/members``)
  is killed mid-way, the bridge restarted and the request repeated as a client would after
  an error; rooms on the homeserver (admin API room list) made since and belonging to no
  team, and team rooms the invitee has no invite to (their own sync), must be 0.

For commands, hs-restart and backlog, every command must get exactly one answer: a command
with none is a lost effect, one with two a doubled effect. A command still unanswered when
the wait ends is waited for up to ``LATE_WAIT`` more: one answered then is counted late (a
delay, such as Synapse's growing back-off after failed pushes), not lost. The time from the restart (or
thaw) until the job was done or the last answer came is reported. Exits non-zero on any
violation.

    .venv/bin/python bench/faults.py [--runs 50] [--seed N] [--smoke]
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
    lost: int = 0
    late: int = 0  # answered only after the wait (not a violation: reported to be looked at)
    doubled: int = 0
    orphans: int = 0  # rooms made since the run began that belong to no team
    missing_invites: int = 0
    resume_s: float = 0.0
    state: str = ""
    mid_way: bool = False  # the job was still running when the signal was sent

    @property
    def violations(self) -> int:
        return (
            self.old_visible
            + self.new_changed
            + self.media_left
            + self.manifest_bad
            + self.lost
            + self.doubled
            + self.orphans
            + self.missing_invites
            + (self.state != "done")
        )


class Homeserver:
    def __init__(self, http: aiohttp.ClientSession, url: str, as_token: str, bot: str) -> None:
        self.http, self.url, self.bot = http, url, bot
        self.auth = {"Authorization": f"Bearer {as_token}"}

    async def upload(self, data: bytes) -> str:
        async with self.http.post(
            f"{self.url}/_matrix/media/v3/upload?filename=x.png",
            data=data,
            headers={**self.auth, "Content-Type": "image/png"},
        ) as r:
            r.raise_for_status()
            return (await r.json())["content_uri"]

    async def send(self, room: str, content: dict, ts: int) -> str:
        url = (
            f"{self.url}/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/{secrets.token_hex(8)}"
            f"?ts={ts}&user_id={quote(self.bot)}"
        )
        async with self.http.put(url, json=content, headers=self.auth) as r:
            r.raise_for_status()
            return (await r.json())["event_id"]

    async def rooms(self) -> set[str]:
        """Every room on the homeserver (Synapse admin API; the bot is an admin)."""
        rooms: set[str] = set()
        start: int | None = 0
        while start is not None:
            async with self.http.get(
                f"{self.url}/_synapse/admin/v1/rooms?limit=500&from={start}", headers=self.auth
            ) as r:
                r.raise_for_status()
                page = await r.json()
            rooms |= {room["room_id"] for room in page["rooms"]}
            start = page.get("next_batch")
        return rooms

    async def invited_to(self, token: str) -> set[str]:
        async with self.http.get(
            f"{self.url}/_matrix/client/v3/sync?timeout=0", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            r.raise_for_status()
            return set((await r.json()).get("rooms", {}).get("invite", {}))

    async def media_exists(self, mxc: str, token: str) -> bool:
        server, media = mxc.removeprefix("mxc://").split("/", 1)
        async with self.http.get(
            f"{self.url}/_matrix/client/v1/media/download/{server}/{media}",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            return r.status == 200


async def timeline(http: aiohttp.ClientSession, url: str, token: str, room: str) -> dict[str, dict]:
    events: dict[str, dict] = {}
    start = None
    while True:
        query = "dir=f&limit=200" + (f"&from={quote(start)}" if start else "")
        async with http.get(
            f"{url}/_matrix/client/v3/rooms/{quote(room)}/messages?{query}",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
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


async def wait_done(
    http: aiohttp.ClientSession, bridge: BridgeUnderTest, team: str, job: int, limit: float = 300
) -> dict:
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


async def kill_during(
    http, bridge: BridgeUnderTest, rng: random.Random, method: str, path: str, body: dict, delay: float
) -> tuple[signal.Signals, float, bool]:
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
    sig, restarted, mid_way = await kill_during(
        http, bridge, rng, "POST", "/teams", {"name": name, "owner": owner}, delay
    )
    team = await settled(http, bridge, name)
    if team is None:  # killed before the team was recorded: the client's repeat creates it
        team = await call(http, bridge, "POST", "/teams", {"name": name, "owner": owner})
    outcome = Outcome(
        n,
        "create",
        sig.name,
        round(delay, 2),
        resume_s=time.monotonic() - restarted,
        state="done" if team["state"] == "active" else team["state"],
        mid_way=mid_way,
    )
    teams = (await call(http, bridge, "GET", "/teams"))["teams"]
    known = {t["space_id"] for t in teams} | {r["room_id"] for t in teams for r in t["rooms"]}
    outcome.orphans = len(await hs.rooms() - before - known)
    return outcome


async def invite_run(
    n: int, rng: random.Random, http, hs: Homeserver, synapse: LocalSynapse, bridge: BridgeUnderTest, team: dict
) -> Outcome:
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
    outcome = Outcome(
        n, "invite", sig.name, round(delay, 2), resume_s=time.monotonic() - restarted, state="done", mid_way=mid_way
    )
    outcome.missing_invites = len(rooms - await hs.invited_to(invitee.access_token))
    return outcome


async def one_run(
    n: int,
    rng: random.Random,
    http,
    hs: Homeserver,
    bridge: BridgeUnderTest,
    team: dict,
    rooms: list[str],
    owner_token: str,
) -> Outcome:
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
    kind = RUN_KINDS[n % len(RUN_KINDS)]
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
    outcome = Outcome(
        n,
        kind,
        sig.name,
        round(delay, 2),
        resume_s=time.monotonic() - restarted,
        state=done["state"],
        mid_way=before["state"] not in ("done", "failed"),
    )
    if kind == "export":
        outcome.manifest_bad = manifest_mismatches(Path(done["progress"]["path"]))
        return outcome
    seen: dict[str, dict] = {}
    for room in rooms:
        seen.update(await timeline(http, hs.url, owner_token, room))
    outcome.old_visible = sum(1 for e in old_ids if e in seen and seen[e].get("content"))
    outcome.new_changed = sum(
        1 for e, body in new_ids.items() if (seen.get(e) or {}).get("content", {}).get("body") != body
    )
    for mxc in old_media:
        outcome.media_left += await hs.media_exists(mxc, owner_token)
    return outcome


KINDS = ("sweep", "commands", "hs-restart", "export", "backlog", "create", "invite")
RUN_KINDS = KINDS  # --kinds narrows the turns to some faults (to hunt one finding)
LOG_LEVEL = "WARNING"  # the bridge's, in bridge.log of the run's folder (--log-level)
COMMANDS, BACKLOG, PAD = 8, 100, 60_000
# How long a member waits for every answer after the fault (--smoke: 60 s; a finding, not a timing).
ANSWER_WAIT = 180
LATE_WAIT = 600  # how much longer an unanswered command is waited for, to tell late from lost


class Member:
    """The team's owner as their client sees their chat with the bot."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, bot: str) -> None:
        self.http, self.url, self.bot = http, url, bot
        self.auth = {"Authorization": f"Bearer {token}"}
        self.chat = ""

    async def open_chat(self) -> None:
        body = {"invite": [self.bot], "is_direct": True, "preset": "trusted_private_chat"}
        async with self.http.post(f"{self.url}/_matrix/client/v3/createRoom", json=body, headers=self.auth) as r:
            r.raise_for_status()
            self.chat = (await r.json())["room_id"]
        await self.wait(lambda said: any("Send `help`" in b or "Send help" in b for b in said), 60)

    async def send(self, word: str, pad: int = 0) -> None:
        content = {"msgtype": "m.text", "body": word, **({"padding": "x" * pad} if pad else {})}
        url = f"{self.url}/_matrix/client/v3/rooms/{quote(self.chat)}/send/m.room.message/{secrets.token_hex(8)}"
        async with self.http.put(url, json=content, headers=self.auth) as r:
            r.raise_for_status()

    async def said(self) -> list[str]:
        """What the bot said in the chat, newest first (up to 1,000 messages)."""
        bodies, start = [], None
        while len(bodies) < 1000:
            query = "dir=b&limit=500" + (f"&from={quote(start)}" if start else "")
            async with self.http.get(
                f"{self.url}/_matrix/client/v3/rooms/{quote(self.chat)}/messages?{query}", headers=self.auth
            ) as r:
                r.raise_for_status()
                page = await r.json()
            bodies += [e["content"].get("body", "") for e in page.get("chunk", []) if e["sender"] == self.bot]
            if not page.get("chunk") or not page.get("end"):
                break
            start = page["end"]
        return bodies

    async def wait(self, done, limit: float) -> list[str]:
        deadline = time.monotonic() + limit
        while True:
            said = await self.said()
            if done(said) or time.monotonic() > deadline:
                return said
            await asyncio.sleep(0.3)


def answers(said: list[str], word: str) -> int:
    return sum(f"`{word}`" in body for body in said)


async def command_run(
    n: int, kind: str, rng: random.Random, servers: dict, bridge: BridgeUnderTest, member: Member
) -> Outcome:
    """One commands, hs-restart or backlog fault (see the module docstring)."""
    count = BACKLOG if kind == "backlog" else COMMANDS
    words = [f"f{n}w{i}{secrets.token_hex(3)}" for i in range(count)]
    sig, delay, mid_way = "-", 0.0, False
    if kind == "commands":
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM]).name
        delay = rng.uniform(0.0, 0.6)
        await asyncio.gather(*(member.send(w) for w in words))
        await asyncio.sleep(delay)  # a random moment of their handling: the fault being injected
        bridge.process.send_signal(signal.Signals[sig])
        answered = await member.said()
        mid_way = not all(answers(answered, w) for w in words)
        await asyncio.to_thread(bridge.process.wait, 60)
        restarted = time.monotonic()
        bridge.start()
        await bridge.ready(member.http)
    elif kind == "hs-restart":
        split = rng.randint(1, count - 1)
        for w in words[:split]:
            await member.send(w)
        await member.wait(lambda said: all(answers(said, w) for w in words[:split]), 60)
        restarted = time.monotonic()
        servers["synapse"] = await asyncio.to_thread(servers["synapse"].restart)
        for w in words[split:]:
            await member.send(w)
    else:  # backlog
        sig = "SIGSTOP"
        bridge.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.gather(*(member.send(w, PAD) for w in words))
        finally:
            bridge.process.send_signal(signal.SIGCONT)
        restarted = time.monotonic()
    said = await member.wait(lambda said: all(answers(said, w) for w in words), ANSWER_WAIT)
    outcome = Outcome(
        n, kind, sig, round(delay, 2), resume_s=time.monotonic() - restarted, state="done", mid_way=mid_way
    )
    unanswered = [w for w in words if answers(said, w) == 0]
    if unanswered:
        said = await member.wait(lambda said: all(answers(said, w) for w in unanswered), LATE_WAIT)
        outcome.late = sum(answers(said, w) > 0 for w in unanswered)
    outcome.lost = sum(answers(said, w) == 0 for w in words)
    outcome.doubled = sum(answers(said, w) > 1 for w in words)
    return outcome


async def main(runs: int, seed: int) -> int:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix="clutto-faults-"))
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(
        synapse,
        folder,
        **{
            "jobs.homeserver_rate": 40,
            "policy.retention.batch_size": 8,
            "policy.retention.purge_slice": "3d",
            "export.directory": str(folder / "exports"),
            "logging.level": LOG_LEVEL,
        },
    )
    synapse.write_config([folder / "registration.yaml"])
    synapse.start()
    servers = {"synapse": synapse}  # a restart replaces it
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
            member = Member(http, synapse.url, owner.access_token, bridge.settings.bot_mxid)
            await member.open_chat()
            print(
                f"{runs} runs, seed {seed}; {OLD} old and {NEW} new messages per room and sweep or export, 2 rooms; "
                f"{COMMANDS} commands per commands/hs-restart run, {BACKLOG} of {PAD // 1000} KB per backlog"
            )
            print(
                f"{'run':>4} {'fault':<10} {'signal':<8} {'after s':>7} {'old':>4} {'new':>4} {'media':>5} "
                f"{'files':>5} {'lost':>4} {'late':>4} {'twice':>5} {'orphan':>6} {'uninv':>5} {'resume s':>8}  state (mid-way?)"
            )
            for n in range(runs):
                kind = RUN_KINDS[n % len(RUN_KINDS)]
                if kind in ("sweep", "export"):
                    o = await one_run(n, rng, http, hs, bridge, team, rooms, owner.access_token)
                elif kind == "create":
                    o = await create_run(n, rng, http, hs, bridge, owner.user_id)
                elif kind == "invite":
                    o = await invite_run(n, rng, http, hs, servers["synapse"], bridge, team)
                else:
                    o = await command_run(n, kind, rng, servers, bridge, member)
                outcomes.append(o)
                print(
                    f"{o.run:>4} {o.kind:<10} {o.signal:<8} {o.killed_after:>7} {o.old_visible:>4} {o.new_changed:>4} "
                    f"{o.media_left:>5} {o.manifest_bad:>5} {o.lost:>4} {o.late:>4} {o.doubled:>5} {o.orphans:>6} "
                    f"{o.missing_invites:>5} {o.resume_s:>8.1f}  "
                    f"{o.state} ({'yes' if o.mid_way else 'no'})",
                    flush=True,
                )
    finally:
        bridge.stop()
        servers["synapse"].stop()
    bad = [o for o in outcomes if o.violations]
    resumes = sorted(o.resume_s for o in outcomes)
    median = resumes[len(resumes) // 2] if resumes else 0
    kinds = ", ".join(f"{sum(o.kind == k for o in outcomes)} {k}" for k in KINDS)
    print(
        f"\n{len(outcomes)} interruptions ({kinds}; {sum(o.mid_way for o in outcomes)} of the kills mid-way): "
        f"{len(bad)} with a violation; lost {sum(o.lost for o in outcomes)}, late {sum(o.late for o in outcomes)}, doubled {sum(o.doubled for o in outcomes)}, "
        f"old visible {sum(o.old_visible for o in outcomes)}, newer changed {sum(o.new_changed for o in outcomes)}, "
        f"media left {sum(o.media_left for o in outcomes)}, export files wrong {sum(o.manifest_bad for o in outcomes)}, "
        f"orphan rooms {sum(o.orphans for o in outcomes)}, invites missing {sum(o.missing_invites for o in outcomes)}; "
        f"resume (restart to done) median {median:.1f}s, max {max(resumes, default=0):.1f}s"
    )
    if bad:
        print(f"Logs of the bridge and Synapse: {folder}")
    return 1 if bad or len(outcomes) < runs else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--smoke", action="store_true", help="one run of each fault (what the test suite runs)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="the faults to take turns between (comma-separated)")
    parser.add_argument("--log-level", default=LOG_LEVEL, help="the bridge's log level (bridge.log in the folder)")
    args = parser.parse_args()
    LOG_LEVEL = args.log_level.upper()
    RUN_KINDS = tuple(args.kinds.split(","))
    if unknown := set(RUN_KINDS) - set(KINDS):
        parser.error(f"unknown fault(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}")
    if args.smoke:
        ANSWER_WAIT, LATE_WAIT = 60, 240
    sys.exit(asyncio.run(main(len(KINDS) if args.smoke else args.runs, args.seed)))
