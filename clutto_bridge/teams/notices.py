"""Two channels to members: service notices reach everyone, marketing only those who opted in.

The choice is checked when a message is sent, never cached, so an opt-out takes effect
for the very next send. Each send is recorded with how many it reached and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mautrix.types import RoomCreatePreset

from clutto_bridge.db.bot import ManagementRooms
from clutto_bridge.db.team import ACTIVE, Team
from clutto_bridge.teams.errors import InvalidInput, NotAllowed
from clutto_bridge.teams.members import MemberService

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
    def __init__(self, members: MemberService, management_rooms: ManagementRooms) -> None:
        self.members = members
        self.management_rooms = management_rooms
        self.db = members.db
        self.clock = members.clock
        self.settings = members.settings

    async def marketing_opted_in(self, user_id: str) -> bool:
        value = await self.db.fetchval("SELECT opted_in FROM marketing_choice WHERE user_id=$1", user_id)
        return self.settings.marketing_default if value is None else bool(value)

    async def set_marketing(self, user_id: str, opted_in: bool) -> None:
        await self.db.execute(
            "INSERT INTO marketing_choice (user_id, opted_in, changed_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (user_id) DO UPDATE SET opted_in=excluded.opted_in, changed_at=excluded.changed_at",
            user_id, opted_in, self.clock.now_ms(),
        )

    async def send(self, kind: str, text: str, *, team_id: str | None, actor: str | None) -> NoticeReport:
        """Send to every active member of one team (or of all teams), each user once."""
        if actor is not None:
            raise NotAllowed("Notices are sent by the operator.")
        if kind not in (SERVICE, MARKETING):
            raise InvalidInput(f"Unknown kind {kind!r}; use {SERVICE} or {MARKETING}.")
        if not isinstance(text, str) or not text.strip() or len(text) > 10_000:
            raise InvalidInput("The notice needs a text of 1 to 10,000 characters.")
        if team_id is not None:
            teams = [await self.members.teams.get(team_id)]
        else:
            teams = await Team.in_state(self.db, ACTIVE)
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
            await self.tell(user_id, f"{label}: {text}{footer}")
            delivered += 1
        await self.db.execute(
            "INSERT INTO notice (ts, kind, team_id, sent_by, delivered, skipped) VALUES ($1, $2, $3, $4, $5, $6)",
            self.clock.now_ms(), kind, team_id, actor, delivered, skipped,
        )
        log.info("%s notice reached %d member(s), %d opted out", kind, delivered, skipped)
        return NoticeReport(delivered, skipped)

    async def tell(self, user_id: str, text: str) -> None:
        """A service message to one user in their direct chat with the bot (`code` marks dropped)."""
        room_id = await self.direct_room(user_id)
        await self.members.teams.bot.send_notice(room_id, text=text.replace("`", ""))

    async def direct_room(self, user_id: str) -> str:
        """The user's direct chat with the bot, opened if there is none yet."""
        room_id = await self.management_rooms.room_of(user_id)
        if room_id is None:
            room_id = await self.members.teams.bot.create_room(
                preset=RoomCreatePreset.TRUSTED_PRIVATE, is_direct=True, invitees=[user_id]
            )
            await self.management_rooms.add(room_id, user_id)
        return room_id
