"""Group chats and individual chats of a team.

Group rooms live in the team's space with its join rule and power levels. Individual
chats are direct rooms between two members, created by the bot so that the team's
policies (power levels, removal, later retention) reach them too.
"""

from __future__ import annotations

import logging

from mautrix.api import Method, Path
from mautrix.errors import MatrixRequestError
from mautrix.types import EventType, RoomCreatePreset

from clutto_bridge.db.team import DIRECT, GROUP, Team, TeamRoom
from clutto_bridge.matrix import spaces
from clutto_bridge.matrix.admin import AdminUnavailable
from clutto_bridge.teams import validation
from clutto_bridge.teams.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.teams.members import MemberService

log = logging.getLogger("clutto.rooms")


class RoomService:
    def __init__(self, members: MemberService) -> None:
        self.members = members
        self.teams = members.teams
        self.db = members.db
        self.clock = members.clock
        self.settings = members.settings

    async def create_group(self, team: Team, name: str, *, actor: str | None) -> TeamRoom:
        await self.teams.require_manager(team, actor)
        name = validation.room_name(name)
        groups = await TeamRoom.of_team(self.db, team.id, kind=GROUP)
        if any(r.name.casefold() == name.casefold() for r in groups):
            raise Conflict(f"{team.name} already has a room named {name!r}.")
        room = await self.teams.add_group_room(team, name)
        for member in await self.members.active(team):
            await spaces.invite_once(self.teams.bot, room.room_id, member.user_id)
        await self.members.sync_power_levels(team, only_room=room.room_id)
        await self.members.record(team, actor, "room_created", room.room_id, name=name)
        return room

    async def archive_group(self, team: Team, name_or_id: str, *, actor: str | None) -> TeamRoom:
        """Unlink from the space and make read-only; history stays until retention removes it."""
        await self.teams.require_manager(team, actor)
        groups = await TeamRoom.of_team(self.db, team.id, kind=GROUP)
        room = next((r for r in groups if name_or_id in (r.room_id, r.name) or r.name.casefold() == name_or_id.casefold()), None)
        if room is None:
            raise NotFound(f"{team.name} has no room {name_or_id!r}.")
        bot = self.teams.bot
        await bot.send_state_event(team.space_id, spaces.SPACE_CHILD, {}, state_key=room.room_id)
        levels = await bot.api.request(Method.GET, Path.v3.rooms[room.room_id].state["m.room.power_levels"])
        levels["events_default"] = spaces.BOT_LEVEL
        await room.archive(self.db, self.clock.now_ms())
        await bot.send_state_event(room.room_id, EventType.ROOM_POWER_LEVELS, levels)
        await bot.send_notice(room.room_id, "This room was archived: it is read-only and no longer in the team's space.")
        await self.members.record(team, actor, "room_archived", room.room_id, name=room.name)
        return room

    async def direct_chat(self, team: Team, requester: str, other: str) -> tuple[TeamRoom, bool]:
        """A direct chat between two members of the team; (room, newly created)."""
        other = validation.user_id(other)
        if other == requester:
            raise InvalidInput("A direct chat needs another member.")
        active = {m.user_id for m in await self.members.active(team)}
        for user in (requester, other):
            if user not in active:
                raise NotAllowed(f"{user} is not a member of {team.name}; direct chats are between members.")
        pair = " ".join(sorted((requester, other)))
        existing = await TeamRoom.direct_between(self.db, team.id, pair)
        if existing:
            return existing, False
        bot = self.teams.bot
        room_id = await bot.create_room(
            preset=RoomCreatePreset.PRIVATE,
            is_direct=True,
            invitees=[requester, other],
            room_version=self.settings.bridge.room_version,
            power_level_override={"users": {bot.mxid: spaces.BOT_LEVEL}, "invite": 100, "state_default": 100},
            initial_state=[spaces.retention_state(self.teams.retention_ms(team))],
        )
        room = TeamRoom(room_id, team.id, DIRECT, f"{requester} & {other}", self.clock.now_ms(), members=pair)
        await room.insert(self.db)
        for user, peer in ((requester, other), (other, requester)):
            await self._mark_direct(user, peer, room_id)
        await self.members.record(team, requester, "direct_chat_created", room_id, members=pair)
        return room, True

    async def _mark_direct(self, user_id: str, peer: str, room_id: str) -> None:
        """Add the room to the user's ``m.direct`` so every client lists it as a DM."""
        try:
            token = await self.members.admin.login_as(user_id)
        except (AdminUnavailable, MatrixRequestError) as e:
            log.warning("Cannot mark %s as direct for %s: %s", room_id, user_id, e)
            return
        session = self.teams.bot.api.session
        base = f"{self.settings.homeserver.address}/_matrix/client/v3"
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base}/user/{user_id}/account_data/m.direct"
        try:
            async with session.get(url, headers=headers) as resp:
                direct = await resp.json() if resp.status == 200 else {}
            rooms = direct.setdefault(peer, [])
            if room_id not in rooms:
                rooms.append(room_id)
            async with session.put(url, json=direct, headers=headers) as resp:
                resp.raise_for_status()
        finally:
            async with session.post(f"{base}/logout", headers=headers):
                pass
