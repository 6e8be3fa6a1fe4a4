"""Retention on the homeserver itself: what the policy says is gone is gone, the window is untouched."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from urllib.parse import quote

import aiohttp
import pytest
from mautrix.types import EventType

from clutto_bridge.app import Bridge
from clutto_bridge.db import create_database
from clutto_bridge.db.job import JobStore
from tests.integration.conftest import Bridges
from tests.integration.helpers import DAY, Api, all_events, stable, team_with_member, wait_for_job
from tests.integration.matrix_client import MatrixClient, wait_until


async def seed_history(bridge: Bridge, room_id: str, member: MatrixClient, *, old: int, now: int) -> dict:
    """Old messages (timestamp massaging), an old image, and a window with an edit and a reaction."""
    bot = bridge.appservice.intent
    old_ids = []
    for i in range(old):
        event_id = await bot.send_message_event(
            room_id,
            EventType.ROOM_MESSAGE,
            {"msgtype": "m.text", "body": f"old message {i}"},
            timestamp=now - 40 * DAY + i * 60_000,
        )
        old_ids.append(event_id)
    old_mxc = await bot.upload_media(b"old picture bytes", mime_type="image/png", filename="old.png")
    old_image = await bot.send_message_event(
        room_id,
        EventType.ROOM_MESSAGE,
        {"msgtype": "m.image", "body": "old.png", "url": old_mxc},
        timestamp=now - 35 * DAY,
    )
    new_mxc = await bot.upload_media(b"new picture bytes", mime_type="image/png", filename="new.png")
    await bot.send_message_event(
        room_id,
        EventType.ROOM_MESSAGE,
        {"msgtype": "m.image", "body": "new.png", "url": new_mxc},
        timestamp=now - DAY,
    )
    await member.send_text(room_id, "a fresh message inside the window")
    reaction = (
        await member.request(
            "PUT",
            f"/v3/rooms/{quote(room_id)}/send/m.reaction/r{time.time_ns()}",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": old_ids[0], "key": "👍"}},
        )
    )["event_id"]
    edit = await bot.send_message_event(
        room_id,
        EventType.ROOM_MESSAGE,
        {
            "msgtype": "m.text",
            "body": "* edited",
            "m.new_content": {"msgtype": "m.text", "body": "edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": old_ids[1]},
        },
    )

    async def noted() -> bool:  # the bridge saw the relations and media arrive
        rows = await bridge.db.fetchval("SELECT COUNT(*) FROM room_relation WHERE room_id=$1", room_id)
        media = await bridge.db.fetchval("SELECT COUNT(*) FROM room_media WHERE room_id=$1", room_id)
        return rows == 2 and media == 2

    await wait_until(noted, what="the bridge to note relations and media")
    return {"old": old_ids + [old_image], "old_mxc": old_mxc, "new_mxc": new_mxc, "relations": [reaction, edit]}


async def media_status(client: MatrixClient, mxc: str, http: aiohttp.ClientSession) -> int:
    server, media_id = mxc.removeprefix("mxc://").split("/")
    url = f"{client.base_url}/_matrix/client/v1/media/download/{server}/{media_id}"
    async with http.get(url, headers={"Authorization": f"Bearer {client.token}"}) as resp:
        return resp.status


@pytest.mark.promise("P11", "P14")
async def test_sweep_removes_old_events_and_keeps_window(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start(bridges.settings(policy__retention__batch_size=4, policy__retention__purge_slice="2d"))
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general, random_room = rooms
    now = bridge.clock.now_ms()
    seeded = await seed_history(bridge, general, member, old=10, now=now)
    await owner.send_text(general, "!clutto retention set 30d")
    await owner.wait_for_notice(general, "now keeps messages for 30d", sender=bot)
    assert (await member.state(general, "m.room.retention"))["max_lifetime"] == 30 * DAY
    cutoff = now - 30 * DAY

    before = await all_events(member, general)
    window = [
        stable(e)
        for e in before
        if e["origin_server_ts"] >= cutoff and "state_key" not in e and e["event_id"] not in seeded["relations"]
    ]
    state_before = sorted(e["event_id"] for e in await member.request("GET", f"/v3/rooms/{quote(general)}/state"))
    assert len([e for e in before if e["origin_server_ts"] < cutoff and "state_key" not in e]) == 11

    api = Api(bridge, http)
    status, preview = await api.call("POST", f"/teams/{team.id}/retention/preview")  # counted on the homeserver
    assert status == 200
    assert {r["name"]: r["events"] for r in preview["rooms"]} == {"general": 13, "random": 0}
    after_preview = await all_events(member, general)
    assert [stable(e) for e in after_preview] == [stable(e) for e in before]  # preview removed nothing
    # Once a sweep that removes nothing has read the room into the index, the preview counts
    # there, and comes to the same number.
    await bridge.retention.set_lifetime(team, "365d", actor=None)
    status, job = await api.call("POST", f"/teams/{team.id}/retention/sweep")
    assert (await wait_for_job(api, team.id, job["id"]))["progress"]["removed"] == 0
    await bridge.retention.set_lifetime(team, "30d", actor=None)
    indexed = await bridge.stores.timeline.find_room(general)
    assert indexed is not None and not indexed.needs_fill and indexed.check_mark is None
    status, again = await api.call("POST", f"/teams/{team.id}/retention/preview")
    assert {r["name"]: r["events"] for r in again["rooms"]} == {"general": 13, "random": 0}
    state_before = sorted(e["event_id"] for e in await member.request("GET", f"/v3/rooms/{quote(general)}/state"))

    status, job = await api.call("POST", f"/teams/{team.id}/retention/sweep")
    assert status == 202
    job = await wait_for_job(api, team.id, job["id"])
    assert job["state"] == "done", job
    assert job["progress"]["removed"] == preview["events"] == 13

    after = await all_events(member, general)
    old_left = [e for e in after if e["origin_server_ts"] < cutoff and "state_key" not in e]
    assert old_left == [], "old messages must be gone from the member's timeline"
    assert not {e["event_id"] for e in after} & set(seeded["old"])
    for relation in seeded["relations"]:
        [event] = [e for e in after if e["event_id"] == relation]
        assert event["content"] == {} and "redacted_because" in event["unsigned"]
    kept = [stable(e) for e in after if e["event_id"] in {w["event_id"] for w in window}]
    assert kept == window, "messages inside the window must be untouched, byte for byte"
    # Synapse keeps the room's state through a purge (only its place in the timeline goes).
    state_after = sorted(e["event_id"] for e in await member.request("GET", f"/v3/rooms/{quote(general)}/state"))
    assert state_after == state_before

    assert await media_status(member, seeded["old_mxc"], http) == 404
    assert await media_status(member, seeded["new_mxc"], http) == 200

    # The homeserver's admin view agrees: no event before the cutoff is left but state.
    admin = await bridges.homeserver.synapse.register_user(f"auditor-{team.id}", admin=True)
    async with http.get(
        f"{bridges.homeserver.url}/_synapse/admin/v1/rooms/{quote(general)}/messages",
        params={"dir": "f", "limit": "1000"},
        headers={"Authorization": f"Bearer {admin.access_token}"},
    ) as resp:
        admin_view = (await resp.json())["chunk"]
    assert not [e for e in admin_view if e["origin_server_ts"] < cutoff and "state_key" not in e]

    entries = await bridge.audit.for_team(team.id, "retention_sweep")
    assert [(e.detail["removed"], e.detail["media_deleted"]) for e in entries] in ([(0, 0), (13, 1)], [(13, 1), (0, 0)])
    assert await bridge.audit.for_team(team.id, "retention_purged")


@pytest.mark.promise("P11")
async def test_legal_hold_keeps_a_room_untouched(bridges: Bridges, new_user, http: aiohttp.ClientSession) -> None:
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    owner, admin, team, rooms = await team_with_member(bridge, new_user, role="admin")
    member = admin
    general, random_room = rooms
    now = bridge.clock.now_ms()
    for room_id in rooms:
        for i in range(3):
            await bridge.appservice.intent.send_message_event(
                room_id, EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"old {i}"}, timestamp=now - 40 * DAY + i
            )
    await bridge.retention.set_lifetime(team, "30d", actor=owner.user_id)
    await owner.send_text(general, "!clutto hold on")
    await owner.wait_for_notice(general, "Legal hold placed on this room", sender=bot)
    # Holds are the owner's (and the operator's): an admin is refused before anything is held.
    await admin.send_text(random_room, "!clutto hold on")
    await admin.wait_for_notice(random_room, f"Only the owner of {team.name} may use `hold`", sender=bot)
    held_before = [stable(e) for e in await all_events(member, general) if "state_key" not in e]

    api = Api(bridge, http)
    other_owner = await new_user("other")
    other = await bridge.teams.create(f"Other {team.id}", owner=other_owner.user_id)
    status, body = await api.call("PUT", f"/teams/{other.id}/hold", json={"room_id": general})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("PUT", f"/teams/{team.id}/retention", json={"max_lifetime": "1h"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM") and "outside" in body["error"]
    status, body = await api.call("PUT", f"/teams/{team.id}/retention", json={"max_lifetime": "thirty days"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM") and "90d" in body["error"]

    status, job = await api.call("POST", f"/teams/{team.id}/retention/sweep")
    job = await wait_for_job(api, team.id, job["id"])
    assert job["state"] == "done" and job["progress"]["held"] == [general]
    assert [stable(e) for e in await all_events(member, general) if "state_key" not in e] == held_before
    assert not [
        e
        for e in await all_events(member, random_room)
        if e["origin_server_ts"] < now - 30 * DAY and "state_key" not in e
    ]
    actions = [e.action for e in await bridge.audit.for_team(team.id)]
    assert "hold_placed" in actions and "retention_sweep" in actions

    # A hold on the whole team blocks everything; lifting it is recorded.
    status, _ = await api.call("PUT", f"/teams/{team.id}/hold", json={"reason": "litigation"})
    assert status == 201
    status, retention = await api.call("GET", f"/teams/{team.id}/retention")
    assert sorted(retention["holds"]) == ["", general]
    status, _ = await api.call("DELETE", f"/teams/{team.id}/hold")
    assert status == 200
    assert "hold_lifted" in [e.action for e in await bridge.audit.for_team(team.id)]


@pytest.mark.promise("P11")
async def test_crash_mid_sweep_then_restart_finishes_without_touching_window(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    slow = {
        "policy__retention__batch_size": 3,
        "jobs__homeserver_rate": 4,
        "jobs__lease": "2s",
        "jobs__poll_interval": "1s",
        "policy__retention__redact": "always",
    }  # redaction page by page gives the kill a moment to land
    bridge = await bridges.start(bridges.settings(**slow))
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    now = bridge.clock.now_ms()
    for i in range(24):
        await bridge.appservice.intent.send_message_event(
            general, EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"old {i}"}, timestamp=now - 40 * DAY + i
        )
    await member.send_text(general, "inside the window")
    await bridge.retention.set_lifetime(team, "30d", actor=owner.user_id)
    window = [
        stable(e)
        for e in await all_events(member, general)
        if e["origin_server_ts"] >= now - 30 * DAY and "state_key" not in e
    ]
    await bridges.stop(bridge)

    # The bridge runs as its own process, and is killed (SIGKILL) in the middle of the sweep.
    settings = bridges.settings(**slow)
    port = settings.appservice.port
    bridges.homeserver.front.target = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "-c", str(bridges.folder / "config.yaml")],
        stdout=open(bridges.folder / "bridge-process.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        api = Api.__new__(Api)
        api.base = f"http://127.0.0.1:{port}/_clutto/v1"
        api.auth = {"Authorization": f"Bearer {settings.provisioning.shared_secret}"}
        api.http = http

        async def up() -> bool:
            try:
                return (await api.call("GET", "/teams"))[0] == 200
            except aiohttp.ClientError:
                return False

        await wait_until(up, 60, "the bridge process")
        status, job = await api.call("POST", f"/teams/{team.id}/retention/sweep")

        async def some_batches() -> bool:
            status, current = await api.call("GET", f"/teams/{team.id}/jobs/{job['id']}")
            return current["progress"].get("redacted", 0) >= 6

        await wait_until(some_batches, 60, "a few batches")
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
    finally:
        if process.poll() is None:
            process.kill()

    # The kill landed mid-way: the member still sees old messages with their content.
    old_with_content = [
        e
        for e in await all_events(member, general)
        if e["origin_server_ts"] < now - 30 * DAY and e["type"] == "m.room.message" and e.get("content")
    ]
    assert 0 < len(old_with_content) < 24, f"{len(old_with_content)} old messages were left at the kill"

    db = create_database(settings.appservice.database, settings.appservice.database_opts)
    await db.start()
    try:
        interrupted = await JobStore(db).get(job["id"])
    finally:
        await db.stop()
    assert interrupted.state == "running" and interrupted.progress["redacted"] < 24  # not finished at the kill

    bridge = await bridges.start(settings)
    done = await bridge.runner.wait(job["id"], timeout=120)
    assert done.state == "done", done
    assert done.progress["redacted"] == 24
    # Where the redactions' time went, kept across the restart: the pace's trail and their seconds.
    assert done.progress["pace"][0][0] == 0 and done.progress["redaction_seconds"] > 0, done.progress
    after = await all_events(member, general)
    assert not [e for e in after if e["origin_server_ts"] < now - 30 * DAY and "state_key" not in e]
    kept = {e["event_id"]: stable(e) for e in after}
    assert all(kept[w["event_id"]] == w for w in window)


async def test_operator_cli_previews_and_sweeps_with_progress(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start()
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    now = bridge.clock.now_ms()
    for i in range(5):
        await bridge.appservice.intent.send_message_event(
            rooms[1], EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"old {i}"}, timestamp=now - 400 * DAY + i
        )
    config = str(bridges.folder / "config.yaml")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "clutto_bridge", "retention", *args, "--team", team.id, "-c", config],
            capture_output=True,
            text=True,
            timeout=120,
        )

    preview = await asyncio.to_thread(cli, "preview")
    assert preview.returncode == 0, preview.stderr
    assert "would remove 5 events in 1 rooms" in preview.stdout
    sweep = await asyncio.to_thread(cli, "sweep")
    assert sweep.returncode == 0, sweep.stderr
    assert "[##############################] 2/2 rooms, 5 events removed" in sweep.stdout
    status = await asyncio.to_thread(cli, "status")
    assert "done" in status.stdout
    plan = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "clutto_bridge", "plan", "paid", "--team", team.id, "-c", config],
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0 and "now on the paid plan" in plan.stdout
    assert (await bridge.teams.get(team.id)).plan == "paid"
    unknown = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "clutto_bridge", "retention", "preview", "--team", "tnope", "-c", config],
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1 and "M_NOT_FOUND" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.promise("P11")
async def test_without_admin_api_sweeps_redact_only_and_say_so(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    synapse = bridges.homeserver.synapse
    admin = await synapse.register_user(f"ops-{time.time_ns()}", admin=True)
    headers = {"Authorization": f"Bearer {admin.access_token}"}
    settings = bridges.settings()
    bot_url = f"{synapse.url}/_synapse/admin/v2/users/{quote(settings.bot_mxid)}"
    async with http.put(bot_url, json={"admin": False}, headers=headers) as resp:
        assert resp.status == 200
    try:
        bridge = await bridges.start(settings)
        assert not bridge.admin.available and not bridge.retention.admin_available
        owner, member, team, rooms = await team_with_member(bridge, new_user)
        now = bridge.clock.now_ms()
        old = await bridge.appservice.intent.send_message_event(
            rooms[0], EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": "old secret"}, timestamp=now - 400 * DAY
        )
        await owner.send_text(rooms[0], "!clutto retention sweep")
        await owner.wait_for_notice(rooms[0], "queued", sender=settings.bot_mxid)
        job = await bridge.runner.wait((await bridge.retention.jobs_of(team))[0].id, 60)
        assert job.state == "done" and job.progress["redaction_only"] is True
        [event] = [e for e in await all_events(member, rooms[0]) if e["event_id"] == old]
        assert event["content"] == {}  # the content is gone for clients, the event itself stays
        await owner.send_text(rooms[0], "!clutto retention status")
        status = await owner.wait_for_notice(rooms[0], "Retention of", sender=settings.bot_mxid)
        assert "admin API is not available" in status["content"]["body"]
        assert "REDACTION ONLY" in status["content"]["body"]
    finally:
        async with http.put(bot_url, json={"admin": True}, headers=headers) as resp:
            assert resp.status == 200


@pytest.mark.promise("P11")
async def test_a_later_sweep_removes_what_expired_since_an_earlier_purge(bridges: Bridges, new_user) -> None:
    """History that reaches a room after its first purge (imported or federated, with old
    timestamps) is found and removed by the next sweep: the scan starts where the purge left
    the room, not at a beginning that no longer exists."""
    bridge = await bridges.start(bridges.settings(policy__retention__batch_size=4, policy__retention__purge_slice="2d"))
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    now = bridge.clock.now_ms()
    await bridge.retention.set_lifetime(team, "30d", actor=None)
    bot = bridge.appservice.intent

    async def old_messages(label: str, count: int) -> set[str]:
        return {
            await bot.send_message_event(
                general,
                EventType.ROOM_MESSAGE,
                {"msgtype": "m.text", "body": f"{label} {i}"},
                timestamp=now - 50 * DAY + i * DAY // 2,
            )
            for i in range(count)
        }

    async def indexed(event_ids: set[str]) -> bool:
        for event_id in event_ids:
            if not await bridge.db.fetchval("SELECT 1 FROM timeline_event WHERE event_id=$1", event_id):
                return False
        return True

    for label in ("first", "second", "third"):
        seeded = await old_messages(label, 8)
        inside = await member.send_text(general, f"{label}: inside the window")
        # From the second round on the room is filled, and the sweep reads what the stream indexed:
        # a sweep asked for before the homeserver sent the new history along finds it next time.
        await wait_until(lambda: indexed({*seeded, inside}), 60, f"the {label} messages indexed from the stream")
        job = await bridge.retention.request_sweep(team, actor=None)
        done = await bridge.runner.wait(job.id, timeout=120)
        assert done.state == "done" and done.progress["removed"] == 8, (label, done.progress)
        left = [e for e in await all_events(member, general) if e["event_id"] in seeded and e.get("content")]
        assert left == [], f"{label}: {len(left)} old messages still readable"
