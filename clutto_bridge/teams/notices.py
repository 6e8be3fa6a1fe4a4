"""Two channels to members: service notices reach everyone, marketing only those who opted in.

The choice is checked when a message is sent, never cached, so an opt-out takes effect
for the very next send. Each send is recorded with how many it reached and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.db.bot import ManagementRooms
from clutto_bridge.db.notices import NoticeStore
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.teams.errors import InvalidInput, NotAllowed
from clutto_bridge.teams.formatting import Message, prose
from clutto_bridge.teams.members import MemberService
from clutto_bridge.teams.service import TeamService

log = logging.getLogger("clutto.notices")

SERVICE = "service"
MARKETING = "marketing"


@dataclass
class NoticeReport:
    delivered: int
    skipped_opted_out: int

    def to_json(self) -> dict:
        return {"delivered": self.delivered, "skipped_opted_out": self.skipped_opted_out}


class NoticeService:
    def __init__(
        self, store: NoticeStore, management_rooms: ManagementRooms, teams: TeamService, members: MemberService,
        homeserver: Homeserver, marketing_default: bool, clock: Clock,
    ) -> None:
        self.store = store
        self.management_rooms = management_rooms
        self.teams = teams
        self.members = members
        self.homeserver = homeserver
        self.marketing_default = marketing_default
        self.clock = clock

    async def marketing_opted_in(self, user_id: str) -> bool:
        value = await self.store.marketing_choice(user_id)
        return self.marketing_default if value is None else value

    async def set_marketing(self, user_id: str, opted_in: bool) -> None:
        await self.store.set_marketing(user_id, opted_in, self.clock.now_ms())

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
        """A service message to one user in their direct chat with the bot.

        ``text`` is Markdown (see ``formatting.prose``; `code` marks are dropped from the plain
        body). ``html`` is accepted from older callers and replaces the rendered HTML.
        """
        message = prose(text, code_marks=False) if isinstance(text, str) else text
        room_id = await self.direct_room(user_id)
        await self.homeserver.send_notice(room_id, message.plain, html or message.html, mentions=message.mentions)

    async def direct_room(self, user_id: str) -> str:
        """The user's direct chat with the bot, opened if there is none yet."""
        room_id = await self.management_rooms.room_of(user_id)
        if room_id is None:
            room_id = await self.homeserver.create_bot_chat(user_id)
            await self.management_rooms.add(room_id, user_id)
        return room_id

    async def chat_opened(self, room_id: str, user_id: str) -> None:
        """The user opened a direct chat with the bot: it becomes where the bot writes to them."""
        await self.management_rooms.add(room_id, user_id)

    async def chat_owner(self, room_id: str) -> str | None:
        """The user whose direct chat with the bot this room is, if it is one."""
        return await self.management_rooms.owner_of(room_id)

    async def chat_closed(self, room_id: str) -> None:
        """The user (or the bot) left: later messages open a new chat instead."""
        await self.management_rooms.remove(room_id)
