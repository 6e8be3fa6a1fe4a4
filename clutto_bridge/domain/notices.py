"""Two channels to members: service notices reach everyone, marketing only those who opted in.

The choice is checked when a message is sent, never cached, so an opt-out takes effect
for the very next send. Each send is recorded with how many it reached and skipped.

Everything the bot tells a user lands in one chat with them: the newest one that is still
live (the user joined it or has its invite). A chat the user starts with the bot becomes that
one, and the bot closes any older chat, so a user never has two.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from urllib.parse import quote

from clutto_bridge.clock import Clock
from clutto_bridge.db.bot import ManagementRooms
from clutto_bridge.db.notices import NoticeStore
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.errors import InvalidInput, NotAllowed
from clutto_bridge.domain.formatting import Message, prose
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver

log = logging.getLogger("clutto.notices")

SERVICE = "service"
MARKETING = "marketing"
LIVE = ("join", "invite")


def room_link(room_id: str) -> str:
    """A matrix.to link that opens the room in the user's client."""
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}"


@dataclass
class NoticeReport:
    delivered: int
    skipped_opted_out: int


@dataclass(kw_only=True, eq=False, repr=False)
class NoticeService:
    store: NoticeStore
    management_rooms: ManagementRooms
    teams: TeamService
    members: MemberService
    homeserver: Homeserver
    marketing_default: bool
    clock: Clock
    consent: ConsentService
    _chat_locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    async def marketing_opted_in(self, user_id: str) -> bool:
        value = await self.store.marketing_choice(user_id)
        return self.marketing_default if value is None else value

    async def set_marketing(self, user_id: str, opted_in: bool) -> None:
        """The member's choice, applied from the next send and kept, dated, in their choices."""
        await self.store.set_marketing(user_id, opted_in, self.clock.now_ms())
        await self.consent.record_choice(user_id, "marketing", "opted_in" if opted_in else "opted_out")

    async def send(self, kind: str, text: str, *, team_id: str | None, actor: str | None) -> NoticeReport:
        """Send to every active member of one team (or of all teams), each user once."""
        if actor is not None:
            raise NotAllowed("Notices are sent by the operator.")
        if kind not in (SERVICE, MARKETING):
            raise InvalidInput(f"Unknown kind {kind!r}; use {SERVICE} or {MARKETING}.")
        if not isinstance(text, str) or not text.strip() or len(text) > 10_000:
            raise InvalidInput("The notice needs a text of 1 to 10,000 characters.")
        if team_id is not None:
            teams = [await self.teams.get(team_id)]
        else:
            teams = await self.teams.active()
        recipients: list[str] = []
        for team in teams:
            for member in await self.members.active(team):
                if member.user_id not in recipients:
                    recipients.append(member.user_id)
        delivered = skipped = 0
        label = "Service notice" if kind == SERVICE else "News from Clutto"
        for user_id in recipients:
            if kind == MARKETING and not await self.marketing_opted_in(user_id):
                skipped += 1
                continue
            footer = "" if kind == SERVICE else "\n(You get these because you opted in; `marketing off` stops them.)"
            await self.tell(user_id, f"**{label}:** {text}{footer}")
            delivered += 1
        await self.store.record_sent(self.clock.now_ms(), kind, team_id, actor, delivered, skipped)
        log.info("%s notice reached %d member(s), %d opted out", kind, delivered, skipped)
        return NoticeReport(delivered, skipped)

    async def tell(self, user_id: str, text: str | Message, html: str | None = None) -> None:
        """A service message to one user in their one direct chat with the bot.

        ``text`` is Markdown (see ``formatting.prose``; `code` marks are dropped from the plain
        body). ``html`` is accepted from older callers and replaces the rendered HTML.
        """
        message = prose(text, code_marks=False) if isinstance(text, str) else text
        async with self._chat_lock(user_id):  # so a chat the user opens meanwhile gets it too
            room_id = await self._one_chat(user_id)
            await self.homeserver.send_notice(room_id, message.plain, html or message.html, mentions=message.mentions)

    async def direct_room(self, user_id: str) -> str:
        """The user's one direct chat with the bot: the newest live one, opened if there is none.

        Chats the user left or rejected while the bridge was not watching are forgotten here;
        older live ones are closed, so whatever the bot says reaches the chat the user reads.
        """
        async with self._chat_lock(user_id):
            return await self._one_chat(user_id)

    async def _one_chat(self, user_id: str) -> str:
        chats = await self.management_rooms.rooms_of(user_id)
        for i, room_id in enumerate(chats):
            if await self._membership(room_id, user_id) in LIVE:
                for older in chats[i + 1 :]:
                    await self._close(older, user_id, room_id)
                return room_id
            await self.management_rooms.remove(room_id)
        room_id = await self.homeserver.create_bot_chat(user_id, encryption=self.teams.room_encryption(None))
        await self.management_rooms.add(room_id, user_id)
        return room_id

    async def chat_opened(self, room_id: str, user_id: str) -> bool:
        """The user opened a direct chat with the bot: it becomes their one chat with the bot.

        It keeps the team the user chose in their previous chat, and the previous chats are
        closed (their invite withdrawn, or a pointer to this chat left before the bot leaves).
        True when this chat replaced an older one.
        """
        async with self._chat_lock(user_id):
            older = [r for r in await self.management_rooms.rooms_of(user_id) if r != room_id]
            team_id = await self.management_rooms.current_team(older[0]) if older else None
            await self.management_rooms.add(room_id, user_id)
            if team_id:
                await self.management_rooms.set_current_team(room_id, team_id)
            for previous in older:
                await self._close(previous, user_id, room_id)
            return bool(older)

    async def current_team(self, room_id: str) -> str | None:
        """The id of the team the user chose for commands in this chat with the bot (`team use`)."""
        return await self.management_rooms.current_team(room_id)

    async def use_team(self, room_id: str, team_id: str | None) -> None:
        await self.management_rooms.set_current_team(room_id, team_id)

    def _chat_lock(self, user_id: str) -> asyncio.Lock:
        # Welcomes for two teams, a notice and a chat the user opens can arrive together;
        # one at a time per user, or each would open a chat of its own.
        return self._chat_locks.setdefault(user_id, asyncio.Lock())

    async def _membership(self, room_id: str, user_id: str) -> str | None:
        """The user's membership as the bot sees it; None when the bot is no longer in the room."""
        member = await self.homeserver.state(room_id, "m.room.member", user_id)
        return member.get("membership") if member else None

    async def _close(self, room_id: str, user_id: str, kept: str) -> None:
        """Close an older chat with the user in favour of ``kept``. What the bot said in a chat
        the user never joined is said again in ``kept``, so no welcome or notice is lost."""
        await self.management_rooms.remove(room_id)
        membership = await self._membership(room_id, user_id)
        try:
            if membership == "invite":
                await self._carry_over(room_id, kept)
                await self.homeserver.kick(room_id, user_id, "Replaced by your newer chat with the bot")
            elif membership == "join":
                text = f"I continue our conversation in our newer chat: {room_link(kept)}"
                await self.homeserver.send_notice(room_id, text)
            await self.homeserver.leave(room_id)
        except MatrixRequestError as e:
            log.info("Could not close the older chat %s with %s: %s", room_id, user_id, e)

    async def _carry_over(self, room_id: str, kept: str) -> None:
        token = None
        while True:
            events, token = await self.homeserver.page_forward(room_id, token, 50)
            for event in events:
                content = event.get("content", {})
                if (
                    event.get("type") == "m.room.message"
                    and event.get("sender") == self.homeserver.bot_mxid
                    and content.get("msgtype") == "m.notice"
                    and content.get("body")
                ):
                    html = content.get("formatted_body") if content.get("format") == "org.matrix.custom.html" else None
                    await self.homeserver.send_notice(kept, content["body"], html)
            if token is None:
                return

    async def chat_owner(self, room_id: str) -> str | None:
        """The user whose direct chat with the bot this room is, if it is one."""
        return await self.management_rooms.owner_of(room_id)

    async def chat_closed(self, room_id: str) -> None:
        """The user (or the bot) left: later messages open a new chat instead."""
        await self.management_rooms.remove(room_id)
