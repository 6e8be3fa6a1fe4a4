"""The appservice's inbox: acknowledged only once stored, handled in order per room, commands
in room lanes, unfinished entries resumed (with a fake inbox standing in for the database)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from clutto_bridge.matrix.appservice import MAX_ATTEMPTS, CluttoAppService


@dataclass
class Entry:
    id: int
    room_id: str
    event: dict[str, Any]
    attempts: int = 0


@dataclass
class FakeInbox:
    entries: list[Entry] = field(default_factory=list)
    txns: set[str] = field(default_factory=set)
    done_ids: list[int] = field(default_factory=list)
    broken: bool = False

    async def accept(self, txn_id: str, events: list[dict], now_ms: int) -> list[Entry] | None:
        if self.broken:
            raise ConnectionError("database unreachable")
        if txn_id in self.txns:
            return None
        self.txns.add(txn_id)
        new = [Entry(len(self.entries) + i + 1, e["room_id"], e) for i, e in enumerate(events)]
        self.entries += new
        return new

    async def done(self, entry_ids: list[int], now_ms: int) -> None:
        self.done_ids += entry_ids

    async def unfinished(self) -> list[Entry]:
        for entry in self.entries:
            entry.attempts += 1
        return [e for e in self.entries if e.id not in self.done_ids]


def _event(n: int, room: str, kind: str = "m.room.message") -> dict:
    event = {"type": kind, "room_id": room, "sender": "@u:example.org", "event_id": f"$e{n}",
             "origin_server_ts": n, "content": {"msgtype": "m.text", "body": f"command {n}"}}
    if kind == "m.room.member":
        event |= {"state_key": "@u:example.org", "content": {"membership": "join"}}
    return event


def _appservice(inbox: FakeInbox) -> CluttoAppService:
    return CluttoAppService(
        server="http://127.0.0.1:1", domain="example.org", as_token="as", hs_token="hs", bot_localpart="bot",
        id="test", inbox=inbox, now_ms=lambda: 0,
    )


async def test_a_busy_room_queues_its_events_and_other_rooms_do_not_wait() -> None:
    inbox = FakeInbox()
    appservice = _appservice(inbox)
    appservice.open_inbox()
    release = asyncio.Event()
    handled: list[str] = []

    async def command(evt) -> None:
        await release.wait()
        handled.append(f"command {evt.event_id}")

    async def handler(evt):
        handled.append(f"saw {evt.event_id}")
        return command(evt) if str(evt.type) == "m.room.message" and evt.room_id == "!a" else None

    appservice.matrix_event_handler(handler)
    await appservice.handle_transaction("t1", events=[_event(1, "!a")], extra_data={})
    await appservice.handle_transaction("t2", events=[_event(2, "!a", "m.room.member"), _event(3, "!b")], extra_data={})
    assert handled == ["saw $e1", "saw $e3"]  # !a is busy: its member event waits; !b does not
    assert inbox.done_ids == [3]
    release.set()
    await asyncio.wait(list(appservice.lanes.values()))
    assert handled == ["saw $e1", "saw $e3", "command $e1", "saw $e2"]
    assert sorted(inbox.done_ids) == [1, 2, 3] and not appservice.lanes

    # A transaction received again is not handled again.
    await appservice.handle_transaction("t1", events=[_event(1, "!a")], extra_data={})
    assert len(handled) == 4


async def test_unfinished_entries_run_once_the_inbox_opens_and_a_poisoned_one_is_given_up() -> None:
    inbox = FakeInbox(entries=[Entry(1, "!a", _event(1, "!a")), Entry(2, "!b", _event(2, "!b"), attempts=MAX_ATTEMPTS)])
    appservice = _appservice(inbox)
    handled: list[str] = []

    async def handler(evt):
        handled.append(evt.event_id)

    appservice.matrix_event_handler(handler)
    assert await appservice.resume_inbox() == 1
    assert inbox.done_ids == [2] and handled == []  # waits for the bridge to be ready
    appservice.open_inbox()
    await asyncio.wait(list(appservice.lanes.values()))
    assert handled == ["$e1"] and inbox.done_ids == [2, 1]


async def test_a_transaction_that_cannot_be_stored_is_not_acknowledged() -> None:
    inbox = FakeInbox(broken=True)
    appservice = _appservice(inbox)
    async with TestClient(TestServer(appservice.app)) as client:
        resp = await client.put(
            "/_matrix/app/v1/transactions/t1", json={"events": [_event(1, "!a")]},
            headers={"Authorization": "Bearer hs"},
        )
        assert resp.status == 500 and (await resp.json())["errcode"] == "M_UNKNOWN"
        assert "t1" not in appservice.transactions
        inbox.broken = False
        resp = await client.put(
            "/_matrix/app/v1/transactions/t1", json={"events": [_event(1, "!a")]},
            headers={"Authorization": "Bearer hs"},
        )
        assert resp.status == 200 and inbox.txns == {"t1"}
