"""Retention from the timeline index, on the homeserver itself: gaps after downtime, imported
history, redaction modes, and a second sweep that reads nothing it does not need."""

from __future__ import annotations

import random
import secrets
import time
from urllib.parse import quote

import aiohttp
import pytest
from mautrix.types import EventType

from clutto_bridge.app import Bridge
from clutto_bridge.db import create_database, timeline as timeline_module
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.timeline import END, TimelineIndex
from clutto_bridge.policy.timeline import CheckWalk, HeadScan
from tests.integration.conftest import Bridges
from tests.integration.helpers import DAY, all_events, stable, team_with_member
from tests.integration.matrix_client import MatrixClient, wait_until

CUTOFF_DAYS = 30
CUT = 1_000_000  # a cutoff in ms for rooms made of index rows alone


async def admin_view(bridges: Bridges, http: aiohttp.ClientSession, room_id: str) -> list[dict]:
    """The room's timeline as the homeserver's admin API sees it (purged events are gone from it)."""
    admin = await bridges.homeserver.synapse.register_user(f"auditor-{secrets.token_hex(4)}", admin=True)
    async with http.get(
        f"{bridges.homeserver.url}/_synapse/admin/v1/rooms/{quote(room_id)}/messages",
        params={"dir": "f", "limit": "1000"},
        headers={"Authorization": f"Bearer {admin.access_token}"},
    ) as resp:
        assert resp.status == 200
        return (await resp.json())["chunk"]


async def send_old(bridge: Bridge, room_id: str, body: str, age_days: float, **content) -> str:
    return await bridge.appservice.intent.send_message_event(
        room_id,
        EventType.ROOM_MESSAGE,
        {"msgtype": "m.text", "body": body, **content},
        timestamp=bridge.clock.now_ms() - int(age_days * DAY),
    )


async def sweep(bridge: Bridge, team) -> dict:
    job = await bridge.retention.request_sweep(team, actor=None)
    done = await bridge.runner.wait(job.id, timeout=120)
    assert done.state == "done", done
    return done.progress


def assert_window_kept(after: list[dict], window: list[dict]) -> None:
    kept = {e["event_id"]: stable(e) for e in after}
    assert [kept[w["event_id"]] for w in window] == window, "the window is untouched, byte for byte"


def window_of(events: list[dict], cutoff: int) -> list[dict]:
    return [stable(e) for e in events if e["origin_server_ts"] >= cutoff and "state_key" not in e]


@pytest.mark.promise("P11")
async def test_events_sent_while_the_bridge_was_down_are_still_removed(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings()
    bridge = await bridges.start(settings)
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await bridge.retention.set_lifetime(team, f"{CUTOFF_DAYS}d", actor=None)
    first = await sweep(bridge, team)  # nothing expired yet; the index of the room is filled
    assert first["removed"] == 0 and first["events_read"] > 0
    await bridges.stop(bridge)

    # While the bridge is down, old history is imported (as the appservice, with old
    # timestamps) and a member writes: the stream cannot deliver any of it.
    now = bridge.clock.now_ms()
    importer = MatrixClient(bridges.homeserver.url, settings.bot_mxid, settings.appservice.as_token, http)
    imported = []
    for i in range(5):
        data = await importer.request(
            "PUT",
            f"/v3/rooms/{quote(general)}/send/m.room.message/down{secrets.token_hex(4)}",
            {"msgtype": "m.text", "body": f"sent while the bridge was down {i}"},
            ts=str(now - 40 * DAY + i),
        )
        imported.append(data["event_id"])
    await member.send_text(general, "written while the bridge was down, inside the window")
    cutoff = now - CUTOFF_DAYS * DAY
    window = window_of(await all_events(member, general), cutoff)

    bridge = await bridges.start(settings)
    progress = await sweep(bridge, team)
    assert progress["events_read"] >= 6, "the restart made the sweep read what the stream may have missed"
    assert progress["removed"] == 5 and progress["redacted"] == 0  # one homeserver only: purged, not redacted
    after = await all_events(member, general)
    assert not {e["event_id"] for e in after} & set(imported)
    assert not {e["event_id"] for e in await admin_view(bridges, http, general)} & set(imported)
    assert_window_kept(after, window)


@pytest.mark.promise("P11")
async def test_imported_history_after_newer_messages_is_redacted_with_its_edits(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await bridge.retention.set_lifetime(team, f"{CUTOFF_DAYS}d", actor=None)
    now = bridge.clock.now_ms()
    cutoff = now - CUTOFF_DAYS * DAY
    purged = [await send_old(bridge, general, f"old before the window {i}", 50 - i) for i in range(3)]
    await member.send_text(general, "inside the window")
    # Imported afterwards: old timestamps placed after a newer message, out of a purge's reach.
    imported = [await send_old(bridge, general, f"imported {i}", 45 - i) for i in range(4)]
    edit = await bridge.appservice.intent.send_message_event(
        general,
        EventType.ROOM_MESSAGE,
        {
            "msgtype": "m.text",
            "body": "* fixed",
            "m.new_content": {"msgtype": "m.text", "body": "fixed"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": imported[0]},
        },
    )
    reaction = (
        await member.request(
            "PUT",
            f"/v3/rooms/{quote(general)}/send/m.reaction/r{secrets.token_hex(4)}",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": purged[0], "key": "👍"}},
        )
    )["event_id"]
    await member.send_text(general, "also inside the window")
    before = await all_events(member, general)
    window = [e for e in window_of(before, cutoff) if e["event_id"] not in (edit, reaction)]

    await owner.send_text(general, "!clutto retention status")
    status = await owner.wait_for_notice(general, "Retention of", sender=bot)
    assert "general: purge, redacting only what a purge cannot reach" in status["content"]["body"]

    progress = await sweep(bridge, team)
    assert progress["removed"] == 3 + 4 + 2
    assert progress["redacted"] == 4 + 2  # the imported messages and the edit and the reaction
    after = {e["event_id"]: e for e in await all_events(member, general)}
    assert not set(purged) & set(after), "the messages before the window are purged"
    for event_id in [*imported, edit, reaction]:
        assert after[event_id]["content"] == {} and "redacted_because" in after[event_id]["unsigned"]
    assert [stable(after[w["event_id"]]) for w in window] == window, "the window is untouched, byte for byte"

    # A second sweep has nothing left to do and reads nothing from the homeserver.
    again = await sweep(bridge, team)
    assert (again["removed"], again["redacted"], again["events_read"]) == (0, 0, 0)


@pytest.mark.promise("P9", "P11")
async def test_a_team_may_ask_for_more_redaction_but_not_less(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general, random_room = rooms
    await bridge.retention.set_lifetime(team, f"{CUTOFF_DAYS}d", actor=None)
    old = [await send_old(bridge, general, f"old {i}", 40) for i in range(3)]
    await member.send_text(general, "inside the window")

    await owner.send_text(general, "!clutto retention redact never")
    refusal = await owner.wait_for_notice(general, "operator requires", sender=bot)
    assert "at least `auto`" in refusal["content"]["body"]
    await member.send_text(general, "!clutto retention redact always")
    await member.wait_for_notice(general, "Only the owner", sender=bot)
    await owner.send_text(general, "!clutto retention redact always")
    await owner.wait_for_notice(general, "now redact: `always`", sender=bot)
    await owner.send_text(general, "!clutto retention status")
    status = await owner.wait_for_notice(general, "Retention of", sender=bot)
    assert "general: redact and purge" in status["content"]["body"]

    progress = await sweep(bridge, team)
    assert (progress["removed"], progress["redacted"]) == (3, 3)  # redacted first, then purged
    assert not {e["event_id"] for e in await admin_view(bridges, http, general)} & set(old)
    assert await bridge.audit.for_team(team.id, "retention_redact_set")
    assert (await bridge.teams.get(team.id)).redact == "always"


async def import_old(bridges: Bridges, http: aiohttp.ClientSession, room_id: str, count: int, label: str) -> list[str]:
    """History imported as the appservice with timestamps 40 days old, while no bridge listens:
    the stream never delivers it (the test front answers Synapse in the bridge's place)."""
    settings = bridges.settings()
    importer = MatrixClient(bridges.homeserver.url, settings.bot_mxid, settings.appservice.as_token, http)
    now = int(time.time() * 1000)
    imported = []
    for i in range(count):
        data = await importer.request(
            "PUT",
            f"/v3/rooms/{quote(room_id)}/send/m.room.message/{label}{secrets.token_hex(4)}",
            {"msgtype": "m.text", "body": f"{label} {i}"},
            ts=str(now - 40 * DAY + i),
        )
        imported.append(data["event_id"])
    return imported


async def send_indexed(bridge: Bridge, room_id: str, count: int) -> None:
    """Messages inside the window, sent as the bot; returns once the stream indexed them all."""
    timeline = bridge.stores.timeline
    room = await timeline.room(room_id)
    before = await timeline.count(room.id)
    for i in range(count):
        await bridge.appservice.intent.send_message_event(
            room_id, EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"indexed from the stream {i}"}
        )

    async def indexed() -> bool:
        return await timeline.count(room.id) >= before + count

    await wait_until(indexed, timeout=60, what=f"{count} messages indexed from the stream")


def assert_redacted(after: list[dict], event_ids: list[str]) -> None:
    by_id = {e["event_id"]: e for e in after}
    for event_id in event_ids:
        assert by_id[event_id]["content"] == {} and "redacted_because" in by_id[event_id]["unsigned"]


@pytest.mark.promise("P11")
async def test_a_restart_costs_the_next_sweep_what_came_after_it_not_the_history_since_the_last_fill(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    batch = 10
    settings = bridges.settings(policy__retention__batch_size=batch)
    bridge = await bridges.start(settings)
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await bridge.retention.set_lifetime(team, f"{CUTOFF_DAYS}d", actor=None)
    await sweep(bridge, team)  # the room's first read, forward; later messages come from the stream
    await send_indexed(bridge, general, 60)
    await bridges.stop(bridge)

    imported = await import_old(bridges, http, general, 5, "imported while the bridge was down")
    await member.send_text(general, "written while the bridge was down, inside the window")
    down = len(imported) + 1
    cutoff = bridge.clock.now_ms() - CUTOFF_DAYS * DAY
    window = window_of(await all_events(member, general), cutoff)

    bridge = await bridges.start(settings)
    progress = await sweep(bridge, team)
    # Each room reads back at most one page past what came while the bridge was down.
    assert progress["events_read"] <= down + batch * len(progress["rooms"]), progress["events_read"]
    # Imported after 60 newer messages, the old messages are out of a purge's reach: redacted.
    assert progress["removed"] == 5 and progress["redacted"] == 5
    after = await all_events(member, general)
    assert_redacted(after, imported)
    assert_window_kept(after, window)


@pytest.mark.promise("P11")
async def test_two_restarts_before_a_sweep_still_find_what_the_first_downtime_missed(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings(policy__retention__batch_size=10)
    bridge = await bridges.start(settings)
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await bridge.retention.set_lifetime(team, f"{CUTOFF_DAYS}d", actor=None)
    await sweep(bridge, team)
    await bridges.stop(bridge)
    first_gap = await import_old(bridges, http, general, 3, "missed in the first downtime")

    # Up again without a sweep: the stream indexes new messages after the first gap, so a
    # mark taken at the second start would lie after it.
    bridge = await bridges.start(settings)
    await send_indexed(bridge, general, 12)
    await bridges.stop(bridge)
    second_gap = await import_old(bridges, http, general, 2, "missed in the second downtime")

    bridge = await bridges.start(settings)
    progress = await sweep(bridge, team)
    # The first gap follows the room's start (purged); the second follows newer messages (redacted).
    assert progress["removed"] == 5 and progress["redacted"] == 2
    after = await all_events(member, general)
    assert not {e["event_id"] for e in after} & set(first_gap)
    assert_redacted(after, second_gap)


@pytest.mark.parametrize("seed", range(4))
async def test_the_databases_summary_of_a_head_settles_it_as_a_walk_would(database_url: str, seed: int) -> None:
    """``TimelineIndex.head`` (three queries) against a walk of every row, on random rooms of
    messages, state and relations, with and without a message inside the window."""
    rng = random.Random(seed)
    db = create_database(database_url)
    await db.start()
    try:
        index, references = TimelineIndex(db), ReferenceStore(db)
        for case in range(6):
            room = await index.room(f"!head{seed}-{case}:x")
            events, ids = [], []
            for i in range(rng.randint(0, 60)):
                inside = case % 3 and rng.random() < 0.3  # every third room: nothing inside the window
                ts = rng.randint(CUT, 2 * CUT) if inside else rng.randint(1, CUT - 1)
                event = {
                    "event_id": f"$h{seed}-{case}-{i}",
                    "room_id": room.room_id,
                    "origin_server_ts": ts,
                    "type": "m.room.message",
                }
                if rng.random() < 0.2:
                    event.update(type="m.room.topic", state_key="")
                elif rng.random() < 0.1:
                    event["unsigned"] = {"redacted_because": {}}
                events.append(event)
                ids.append(event["event_id"])
            await index.fill(room, events, None, finished=True)
            for n, target in enumerate(rng.sample(ids, min(len(ids), 8))):
                await references.add_relation(
                    room.room_id, f"$rel{seed}-{case}-{n}", target, "m.annotation", rng.choice([CUT - 5, CUT + 5])
                )

            walked = HeadScan(CUT, slice_ms=10**12)
            rows = await index.rows_after(room.id, 0, 1000)
            expired = [r for r in rows if walked.see(r)]
            walked.finish()
            fresh = [r.event_id for r in expired if not r.redacted]
            want = [e for e in await references.relations_to_any(room.room_id, fresh, CUT) if e not in fresh]

            facts = await index.head(room.id, 0, CUT)
            settled = HeadScan(CUT, slice_ms=10**12)
            assert settled.can_close_with(facts)
            settled.close_with(facts)
            assert (settled.points, settled.closed) == (walked.points, True), (seed, case)
            assert facts.rows == len(
                [r for r in rows if facts.first_inside is None or r.position < facts.first_inside[0]]
            )
            before = facts.first_inside[0] if facts.first_inside else END
            got = await index.relations_inside_window(room.room_id, room.id, 0, before, CUT)
            assert sorted(got) == sorted(set(want)), (seed, case)
    finally:
        await db.stop()


def _message(room_id: str, event_id: str, ts: int) -> dict:
    return {"event_id": event_id, "room_id": room_id, "origin_server_ts": ts, "type": "m.room.message"}


async def _first_inside(index: TimelineIndex, room: int) -> str | None:
    facts = await index.head(room, 0, CUT)
    return facts.first_inside[1] if facts.first_inside else None


@pytest.mark.promise("P11")
async def test_what_the_stream_writes_during_a_fill_or_check_is_placed_after_what_it_reads(database_url: str) -> None:
    """A quiet room whose every indexed message expired; while the bridge was down, messages
    inside the window were sent (the gap); a new one arrives by the stream while the sweep is
    still reading the gap. Placed before the gap, the new message would be the purge point,
    and a purge up to it would remove the gap's messages, which are inside the window."""
    db = create_database(database_url)
    await db.start()
    try:
        index = TimelineIndex(db)
        # After a restart: the check reads the gap backwards while the stream writes $new.
        room = await index.room("!check:x")
        await index.fill(room, [_message(room.room_id, f"$old{i}", 10 + i) for i in range(3)], None, finished=True)
        await index.mark_for_check()
        room = await index.room(room.room_id)
        gap = [_message(room.room_id, f"$gap{i}", CUT + i) for i in range(3)]
        walk = CheckWalk(room.room_id)
        walk.see(gap[::-1], set())  # read newest first, down to the known $old2
        walk.see([_message(room.room_id, "$old2", 12)], await index.known_before_check(room, ["$old2"]))
        assert walk.met
        async with db.acquire() as conn:
            await TimelineIndex.record(conn, [_message(room.room_id, "$new", CUT + 10)])
        await index.finish_check(room, walk)
        order = [r.event_id for r in await index.rows_after(room.id, 0, 100)]
        assert order == ["$old0", "$old1", "$old2", "$gap0", "$gap1", "$gap2", "$new"]
        assert await _first_inside(index, room.id) == "$gap0"

        # A room read for the first time, forward, page by page, while the stream writes $live.
        fresh = await index.room("!fill:x")
        await index.fill(fresh, [_message(fresh.room_id, f"$a{i}", 10 + i) for i in range(3)], "t1", finished=False)
        async with db.acquire() as conn:
            await TimelineIndex.record(conn, [_message(fresh.room_id, "$live", CUT + 10)])
        await index.fill(fresh, [_message(fresh.room_id, f"$b{i}", CUT + i) for i in range(3)], None, finished=True)
        order = [r.event_id for r in await index.rows_after(fresh.id, 0, 100)]
        assert order == ["$a0", "$a1", "$a2", "$b0", "$b1", "$b2", "$live"]
        assert await _first_inside(index, fresh.id) == "$b0"

        # Once placed, rows are no longer moved: the next check leaves them where they are.
        async with db.acquire() as conn:
            await TimelineIndex.record(conn, [_message(fresh.room_id, "$later", CUT + 20)])
        await index.mark_for_check()
        fresh = await index.room(fresh.room_id)
        walk = CheckWalk(fresh.room_id)
        walk.see([_message(fresh.room_id, "$later", CUT + 20)], await index.known_before_check(fresh, ["$later"]))
        await index.finish_check(fresh, walk)
        assert [r.event_id for r in await index.rows_after(fresh.id, 0, 100)][-2:] == ["$live", "$later"]
    finally:
        await db.stop()


async def test_a_purge_is_forgotten_in_batches_counting_the_messages_it_removed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timeline_module, "PRUNE_BATCH", 7)  # several transactions for 40 rows
    db = create_database(database_url)
    await db.start()
    try:
        index = TimelineIndex(db)
        room = await index.room("!prune:x")
        events = []
        for i in range(40):
            event = _message(room.room_id, f"$p{i}", 10 + i)
            if i % 5 == 0:
                event.update(type="m.room.topic", state_key="")
            elif i % 7 == 0:
                event["unsigned"] = {"redacted_because": {}}
            events.append(event)
        await index.fill(room, events, None, finished=True)
        rows = await index.rows_after(room.id, 0, 100)
        cut = rows[33].position
        messages = [r for r in rows[:33] if not r.state and not r.redacted]
        assert await index.prune_before(room.id, cut) == len(messages)
        assert [r.event_id for r in await index.rows_after(room.id, 0, 100)] == [f"$p{i}" for i in range(33, 40)]
        assert await index.prune_before(room.id, cut) == 0
    finally:
        await db.stop()
