"""The inbox's work: acknowledged only once stored, handled in order per room, commands
in room lanes, unfinished entries resumed (on a real SQLite database; the integration tests
drive the same through a real Synapse on both databases)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from clutto_bridge.crypto import FieldCipher, Keyset
from clutto_bridge.db import create_database
from clutto_bridge.db.inbox import Inbox
from clutto_bridge.jobs.inbox import MAX_ATTEMPTS, InboxWork
from clutto_bridge.matrix.appservice import CluttoAppService
from clutto_bridge.metrics import Metrics


@pytest.fixture
async def inbox(tmp_path: Path) -> Inbox:
    db = create_database(f"sqlite:{tmp_path / 'inbox.db'}")
    await db.start()
    yield Inbox(db, FieldCipher(Keyset.generate(0)))
    await db.stop()


async def open_ids(inbox: Inbox) -> list[str]:
    rows = await inbox.db.fetch("SELECT event_id FROM inbox_event WHERE done_at IS NULL ORDER BY id")
    return [row["event_id"] for row in rows]


def _event(n: int, room: str, kind: str = "m.room.message") -> dict:
    event = {
        "type": kind,
        "room_id": room,
        "sender": "@u:example.org",
        "event_id": f"$e{n}",
        "origin_server_ts": n,
        "content": {"msgtype": "m.text", "body": f"command {n}"},
    }
    if kind == "m.room.member":
        event |= {"state_key": "@u:example.org", "content": {"membership": "join"}}
    return event


def _appservice(inbox: Inbox) -> tuple[CluttoAppService, InboxWork]:
    work = InboxWork(inbox, lambda: 0)
    appservice = CluttoAppService(
        server="http://127.0.0.1:1",
        domain="example.org",
        as_token="as",
        hs_token="hs",
        bot_localpart="bot",
        id="test",
        receiver=work,
    )
    return appservice, work


async def until(condition, timeout: float = 5.0) -> None:
    """Let the lanes run until ``condition()`` holds (a deadline, not a fixed wait)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_busy_room_queues_its_events_and_other_rooms_do_not_wait(inbox: Inbox) -> None:
    appservice, work = _appservice(inbox)
    work.open(appservice.handle_event)
    release = asyncio.Event()
    handled: list[str] = []

    async def command(evt) -> None:
        await release.wait()
        handled.append(f"command {evt.event_id}")

    async def handler(evt):
        handled.append(f"saw {evt.event_id}")
        return command(evt) if str(evt.type) == "m.room.message" and evt.room_id == "!a" else None

    appservice.matrix_event_handler(handler)
    await work.receive("t1", [_event(1, "!a")], None)
    await work.receive("t2", [_event(2, "!a", "m.room.member"), _event(3, "!b")], None)
    await until(lambda: "!b" not in work.lanes)
    assert handled == ["saw $e1", "saw $e3"]  # !a is busy: its member event waits; !b does not
    assert await open_ids(inbox) == ["$e1", "$e2"]  # !b's event is done
    release.set()
    await asyncio.wait(list(work.lanes.values()))
    assert handled == ["saw $e1", "saw $e3", "command $e1", "saw $e2"]
    assert await open_ids(inbox) == [] and not work.lanes

    # The same events received again are not handled again, whatever the transaction id.
    await work.receive("t1", [_event(1, "!a")], None)
    await work.receive("t9", [_event(3, "!b")], None)
    assert not work.lanes and len(handled) == 4


async def test_a_reused_transaction_id_with_new_events_is_handled(inbox: Inbox) -> None:
    """After a clean restart, Synapse on SQLite numbers its transactions from 1 again."""
    appservice, work = _appservice(inbox)
    work.open(appservice.handle_event)
    handled: list[str] = []

    async def handler(evt):
        handled.append(evt.event_id)

    appservice.matrix_event_handler(handler)
    await work.receive("1", [_event(1, "!a")], None)
    await work.receive("1", [_event(2, "!a"), _event(1, "!a")], None)
    await until(lambda: not work.lanes)
    assert handled == ["$e1", "$e2"] and await open_ids(inbox) == []


async def test_the_acknowledgement_does_not_wait_for_handling(inbox: Inbox) -> None:
    """A handler stuck on the homeserver (a join that is retried) holds only its own room."""
    appservice, work = _appservice(inbox)
    work.open(appservice.handle_event)
    stuck = asyncio.Event()
    handled: list[str] = []

    async def handler(evt):
        if evt.room_id == "!stuck":
            await stuck.wait()
        handled.append(evt.event_id)

    appservice.matrix_event_handler(handler)
    async with TestClient(TestServer(appservice.app)) as client:
        for n, room in enumerate(["!stuck", "!a"], start=1):
            resp = await client.put(
                f"/_matrix/app/v1/transactions/t{n}",
                json={"events": [_event(n, room)]},
                headers={"Authorization": "Bearer hs"},
            )
            assert resp.status == 200
        await until(lambda: handled == ["$e2"])
        assert await open_ids(inbox) == ["$e1"]
        stuck.set()
        await until(lambda: not work.lanes)
        assert handled == ["$e2", "$e1"] and await open_ids(inbox) == []


async def test_unfinished_entries_run_once_the_inbox_opens_and_a_poisoned_one_is_given_up(inbox: Inbox) -> None:
    await inbox.accept("t0", [_event(1, "!a"), _event(2, "!b")], 0)  # stored, then the bridge died
    await inbox.db.execute("UPDATE inbox_event SET attempts=$1 WHERE event_id='$e2'", MAX_ATTEMPTS)
    appservice, work = _appservice(inbox)
    handled: list[str] = []

    async def handler(evt):
        handled.append(evt.event_id)

    appservice.matrix_event_handler(handler)
    assert await work.resume() == 1
    assert await open_ids(inbox) == ["$e1"] and handled == []  # $e2 given up; $e1 waits for the bridge
    work.open(appservice.handle_event)
    await asyncio.wait(list(work.lanes.values()))
    assert handled == ["$e1"] and await open_ids(inbox) == []


async def test_a_transaction_that_cannot_be_stored_is_not_acknowledged(inbox: Inbox) -> None:
    appservice, work = _appservice(inbox)
    await inbox.db.execute("ALTER TABLE inbox_event RENAME TO inbox_event_away")  # the store fails
    async with TestClient(TestServer(appservice.app)) as client:
        resp = await client.put(
            "/_matrix/app/v1/transactions/t1",
            json={"events": [_event(1, "!a")]},
            headers={"Authorization": "Bearer hs"},
        )
        assert resp.status == 500 and (await resp.json())["errcode"] == "M_UNKNOWN"
        await inbox.db.execute("ALTER TABLE inbox_event_away RENAME TO inbox_event")
        resp = await client.put(
            "/_matrix/app/v1/transactions/t1",
            json={"events": [_event(1, "!a")]},
            headers={"Authorization": "Bearer hs"},
        )
        assert resp.status == 200 and await open_ids(inbox) == ["$e1"]  # kept until the bridge is ready


async def test_a_stop_drains_the_lanes_and_their_background_work_as_one(inbox: Inbox) -> None:
    """One owner: a command in a lane and the background work an event started are both in
    flight (and counted), both drained, and cancelled together after the grace period."""
    appservice, work = _appservice(inbox)
    work.open(appservice.handle_event)
    stuck, started = asyncio.Event(), asyncio.Event()
    cancelled: list[str] = []

    async def hold(name: str) -> None:
        started.set()
        try:
            await stuck.wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def handler(evt):
        work.start(hold("welcome"))
        return hold("command")

    appservice.matrix_event_handler(handler)
    metrics = Metrics()
    metrics.count_in_flight(lambda: work.in_flight)
    await work.receive("t1", [_event(1, "!a")], None)
    await until(lambda: work.in_flight == 2 and len(cancelled) == 0 and started.is_set())
    assert b"clutto_events_in_flight 2.0" in metrics.render()
    await work.drain(0.2)
    assert sorted(cancelled) == ["command", "welcome"] and work.in_flight == 0 and not work.lanes
    assert b"clutto_events_in_flight 0.0" in metrics.render()
    assert await open_ids(inbox) == ["$e1"]  # handled again on the next start


async def test_the_appservice_paths_need_the_homeserver_token(inbox: Inbox) -> None:
    appservice, _ = _appservice(inbox)
    async with TestClient(TestServer(appservice.app)) as client:
        for method, path in (("PUT", "/_matrix/app/v1/transactions/t1"), ("POST", "/_matrix/app/v1/ping")):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                resp = await client.request(method, path, json={"events": []}, headers=headers)
                assert resp.status == 401 and (await resp.json())["errcode"] == "M_UNKNOWN_TOKEN"
        resp = await client.post("/_matrix/app/v1/ping?access_token=hs", json={"transaction_id": "p1"})
        assert resp.status == 200 and await resp.json() == {}
        # The user and alias queries are mautrix's: nothing of the bridge's lives there.
        resp = await client.get("/_matrix/app/v1/users/@someone:example.org", headers={"Authorization": "Bearer hs"})
        assert resp.status == 404
        resp = await client.get("/_matrix/app/v1/users/@someone:example.org")
        assert resp.status == 401
    assert await open_ids(inbox) == []
