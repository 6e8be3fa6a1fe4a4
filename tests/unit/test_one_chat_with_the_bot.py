"""One chat with the bot per user, and one welcome per team, with stand-ins for the homeserver
and the stores (the integration tests drive the same from a member's client)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.onboarding import Onboarding

BOT, ANN = "@clutto:acme", "@ann:acme"


class Chats:
    """ManagementRooms in memory: newest first by insertion order."""

    def __init__(self) -> None:
        self.rooms: dict[str, str] = {}
        self.teams: dict[str, str | None] = {}

    async def add(self, room_id: str, user_id: str) -> None:
        self.rooms.pop(room_id, None)
        self.rooms[room_id] = user_id

    async def rooms_of(self, user_id: str) -> list[str]:
        return [r for r, u in reversed(self.rooms.items()) if u == user_id]

    async def remove(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)

    async def current_team(self, room_id: str) -> str | None:
        return self.teams.get(room_id)

    async def set_current_team(self, room_id: str, team_id: str | None) -> None:
        self.teams[room_id] = team_id


class FakeHomeserver:
    bot_mxid = BOT

    def __init__(self) -> None:
        self.membership: dict[tuple[str, str], str] = {}
        self.sent: list[tuple[str, str]] = []
        self.created = 0
        self.kicked: list[str] = []
        self.left: list[str] = []

    async def create_bot_chat(self, user_id: str) -> str:
        await asyncio.sleep(0)  # room creation yields to other tasks, as the real one does
        self.created += 1
        room_id = f"!chat{self.created}:acme"
        self.membership[(room_id, user_id)] = "invite"
        return room_id

    async def state(self, room_id: str, event_type: str, state_key: str = ""):
        if room_id in self.left:
            return None
        membership = self.membership.get((room_id, state_key))
        return {"membership": membership} if membership else None

    async def send_notice(self, room_id: str, text: str, html: str | None = None) -> str:
        self.sent.append((room_id, text))
        return "$event"

    async def page_forward(self, room_id: str, token, limit: int):
        events = [{"type": "m.room.message", "sender": BOT, "content": {"msgtype": "m.notice", "body": text}}
                  for room, text in self.sent if room == room_id]
        return events, None

    async def kick(self, room_id: str, user_id: str, reason: str) -> bool:
        self.kicked.append(room_id)
        self.membership[(room_id, user_id)] = "leave"
        return True

    async def leave(self, room_id: str) -> None:
        self.left.append(room_id)


def notices() -> tuple[NoticeService, Chats, FakeHomeserver]:
    chats, hs = Chats(), FakeHomeserver()
    return NoticeService(None, chats, None, None, hs, False, None, None), chats, hs


async def test_messages_sent_together_open_one_chat() -> None:
    service, chats, hs = notices()
    await asyncio.gather(*(service.tell(ANN, f"notice {i}") for i in range(3)))
    assert hs.created == 1 and await chats.rooms_of(ANN) == ["!chat1:acme"]
    assert [room for room, _ in hs.sent] == ["!chat1:acme"] * 3


async def test_a_chat_the_user_left_is_replaced_and_a_live_one_reused() -> None:
    service, chats, hs = notices()
    first = await service.direct_room(ANN)
    assert await service.direct_room(ANN) == first
    hs.membership[(first, ANN)] = "leave"  # left while the bridge was not watching
    second = await service.direct_room(ANN)
    assert second != first and await chats.rooms_of(ANN) == [second]


async def test_a_chat_the_user_starts_replaces_a_joined_one_with_a_pointer() -> None:
    service, chats, hs = notices()
    old = await service.direct_room(ANN)
    hs.membership[(old, ANN)] = "join"
    await service.use_team(old, "tglobex")
    assert await service.chat_opened("!mine:acme", ANN) is True
    assert await chats.rooms_of(ANN) == ["!mine:acme"]
    assert await service.current_team("!mine:acme") == "tglobex"  # the choice moves along
    assert hs.sent == [(old, "I continue our conversation in our newer chat: https://matrix.to/#/!mine:acme")]
    assert hs.left == [old] and hs.kicked == []


async def test_a_chat_the_user_starts_withdraws_an_unread_invite_and_repeats_what_it_said() -> None:
    service, chats, hs = notices()
    await service.tell(ANN, "Welcome to Acme!")
    old = await chats.rooms_of(ANN)
    assert await service.chat_opened("!mine:acme", ANN) is True
    assert hs.kicked == old and hs.left == old
    assert ("!mine:acme", "Welcome to Acme!") in hs.sent
    assert await service.chat_opened("!mine:acme", ANN) is False  # nothing older left


class Welcomes:
    def __init__(self) -> None:
        self.done: set[tuple[str, str]] = set()

    async def welcomed(self, team_id: str, user_id: str) -> bool:
        return (team_id, user_id) in self.done

    async def record(self, team_id: str, user_id: str, now_ms: int) -> None:
        self.done.add((team_id, user_id))


class Consent:
    current = SimpleNamespace(version="2026-01", summary="We keep little.", url=None)

    def __init__(self) -> None:
        self.told: set[str] = set()

    async def has_consented(self, user_id: str) -> bool:
        return False

    async def was_told(self, user_id: str, version: str) -> bool:
        return user_id in self.told

    async def mark_told(self, user_id: str, version: str) -> None:
        self.told.add(user_id)


ACME, GLOBEX = SimpleNamespace(id="tacme", name="Acme"), SimpleNamespace(id="tglobex", name="Globex")


class Teams:
    async def of_user(self, user_id: str):
        return [ACME, GLOBEX]

    async def role_of(self, team, user_id: str):
        return "member"


def onboarding() -> tuple[Onboarding, list[str]]:
    told: list[str] = []

    async def tell(user_id: str, text: str, html: str | None = None) -> None:
        await asyncio.sleep(0)
        told.append(text)

    async def nothing(*args) -> None:
        return None

    async def no_missing(user_id: str) -> list[str]:
        return []

    members = SimpleNamespace(teams=Teams())
    profiles = SimpleNamespace(publish=nothing, missing=no_missing)
    profile_store = SimpleNamespace(set_reminded=nothing)
    settings = SimpleNamespace(consent=SimpleNamespace(mode="remind"))
    clock = SimpleNamespace(now_ms=lambda: 0)
    service = Onboarding(members, None, profile_store, Consent(), profiles, SimpleNamespace(tell=tell), settings,
                         clock, Welcomes())
    return service, told


async def test_each_team_welcomes_once_and_the_policy_comes_once() -> None:
    service, told = onboarding()
    await asyncio.gather(service.welcome(ACME, ANN), service.welcome(GLOBEX, ANN), service.welcome(ACME, ANN))
    await service.welcome(GLOBEX, ANN)  # joining the space again
    assert len(told) == 2, told
    assert sum("please read our privacy policy" in t for t in told) == 1
    assert {t.split("!")[0] for t in told} == {"Welcome to Acme", "Welcome to Globex"}
    assert all("team use NAME" in t for t in told)
