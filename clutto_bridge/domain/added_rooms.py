"""Rooms an owner or admin adds to the team's space become team rooms (issue 24 item 6).

Element's "Add existing room" and "Add room" set ``m.space.child`` in the space; the room was
made by the member (Element encrypts new private rooms by default), not by the bot. The bot
joins it (it must be invited, unless the room admits the space's members), makes itself the
room's admin through the homeserver's admin API where it needs to, and gives it the team's
rules: recorded as a group room (retention sweeps, export, holds), ``m.room.retention``, the
team's power levels as far as the room lets the bot set them, and encryption (under
``default`` and ``require``, the owner told first). Every step is the same when repeated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.db.team import RoomKind, RoomStore, Team, TeamRoom, TeamState
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.encryption import RoomEncryption
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.power import may_change_levels
from clutto_bridge.domain.service import MANAGERS, TeamService
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.matrix.errors import AdminUnavailable, MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.spaces import retention_state
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.rooms")


@dataclass(kw_only=True, eq=False, repr=False)
class AddedRooms:
    members: MemberService
    teams: TeamService
    rooms: RoomStore
    encryption: RoomEncryption
    notices: NoticeService
    homeserver: Homeserver
    admin: SynapseAdmin
    audit: AuditLog
    clock: Clock

    async def child_added(self, space_id: str, room_id: str, sender: str) -> None:
        """``sender`` made ``room_id`` a child of ``space_id``: if that is a team's space, adopt it."""
        team = await self.teams.for_room(space_id)
        if team is None or team.space_id != space_id or team.state != TeamState.ACTIVE:
            return
        if await self.rooms.get(room_id) is not None:
            return  # a team room already (the bot's own, or adopted before)
        if await self.teams.role_of(team, sender) not in MANAGERS:
            log.info("%s linked %s into the space of team %s without managing it; ignored", sender, room_id, team.id)
            return
        try:
            await self.homeserver.join(room_id)
        except MatrixRequestError as e:
            log.info("Could not join %s, added to the space of team %s: %s", room_id, team.id, e)
            await self.notices.tell(
                sender,
                (
                    f"You added a room to the space of {team.name}. To give it the team's rules (retention, "
                    f"encryption, roles), I need to be in it: **invite me** ({self.homeserver.bot_mxid}) to the room, "
                    "and I take it from there."
                ),
            )
            return
        await self.adopt(team, room_id, sender)

    async def invited(self, room_id: str, inviter: str) -> None:
        """The bot joined a room ``inviter`` invited it to: a child of one of the inviter's team
        spaces (added before the bot was in it) is adopted now."""
        if await self.rooms.get(room_id) is not None:
            return
        for team in await self.teams.of_user(inviter):
            if team.state != TeamState.ACTIVE or team.space_id is None:
                continue
            link = await self.homeserver.state(team.space_id, "m.space.child", room_id)
            if link and link.get("via"):
                await self.adopt(team, room_id, inviter)
                return

    async def adopt(self, team: Team, room_id: str, actor: str) -> TeamRoom | None:
        """Give a room the bot is in the team's rules and record it as a team room."""
        if not await self._may_set_rules(team, room_id, actor):
            return None
        hs = self.homeserver
        retention = retention_state(self.teams.retention_ms(team))
        await hs.set_state(room_id, retention["type"], retention["content"])
        name = (await hs.state(room_id, "m.room.name") or {}).get("name") or room_id
        room = TeamRoom(room_id, team.id, RoomKind.GROUP, name, self.clock.now_ms())
        await self.members.sync_power_levels(team, only_room=room_id)
        await self.encryption.encrypt_rooms(team, [room], actor=actor)
        if await self.rooms.get(room_id) is None:
            await self.rooms.insert(room)  # last: a repeat after a stop applies every rule again
            await self.audit.record(team, actor, AuditAction.ROOM_ADDED, room_id, name=name)
        log.info("Room %s added to team %s by %s has the team's rules", room_id, team.id, actor)
        return room

    async def _may_set_rules(self, team: Team, room_id: str, actor: str) -> bool:
        """The bot needs the room's admin level; the homeserver's admin API gives it the level of
        the room's highest local user. Without it, the person who added the room is told."""
        bot = self.homeserver.bot_mxid
        if may_change_levels(await self.homeserver.power_levels(room_id), bot):
            return True
        try:
            await self.admin.make_room_admin(room_id)
        except (AdminUnavailable, MatrixRequestError) as e:
            log.info("Could not become admin of %s, added to team %s: %s", room_id, team.id, e)
        if may_change_levels(await self.homeserver.power_levels(room_id), bot):
            return True
        await self.notices.tell(
            actor,
            (
                f"I joined the room you added to {team.name}, but I cannot apply the team's rules there: "
                f"**make me an admin of the room** (power level 100 for {bot}), then remove the room from the "
                "space and add it again."
            ),
        )
        return False
