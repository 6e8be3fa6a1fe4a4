"""Group chats and individual chats of a team.

Group rooms live in the team's space with its join rule and power levels. Individual
chats are direct rooms between two members, created by the bot so that the team's
policies (power levels, removal, later retention) reach them too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.db.team import RoomKind, RoomStore, Team, TeamRoom
from clutto_bridge.domain import validation
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.domain.formatting import prose
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.spaces import BOT_LEVEL
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.rooms")


@dataclass(kw_only=True, eq=False, repr=False)
class RoomService:
    members: MemberService
    teams: TeamService
    store: RoomStore
    homeserver: Homeserver
    audit: AuditLog
    room_version: str
    clock: Clock

    async def create_group(
        self, team: Team, name: str, *, actor: str | None, kind: RoomKind = RoomKind.GROUP
    ) -> TeamRoom:
        """A group room in the space, every member invited. An identity provider's group room
        (``SCIM_GROUP``) is invite-only, invites nobody here (its group invites its members once
        recorded, ``domain/scim_rooms.py``) and is left out when later members are invited."""
        await self.teams.require_manager(team, actor)
        name = validation.room_name(name)
        if await self.named(team, name):
            raise Conflict(f"{team.name} already has a room named {name!r}.")
        room = await self.teams.add_group_room(team, name, kind)
        if kind == RoomKind.GROUP:
            for member in await self.members.active(team):
                await self.homeserver.invite_once(room.room_id, member.user_id)
        await self.members.sync_power_levels(team, only_room=room.room_id)
        await self.audit.record(team, actor, AuditAction.ROOM_CREATED, room.room_id, name=name)
        return room

    async def named(self, team: Team, name: str) -> TeamRoom | None:
        """The team's group room (of either kind) of that name, in any case."""
        rooms = await self.store.of_team(team.id)
        return next((r for r in rooms if r.kind != RoomKind.DIRECT and r.name.casefold() == name.casefold()), None)

    async def archive_group(self, team: Team, name_or_id: str, *, actor: str | None) -> TeamRoom:
        """Unlink from the space and make read-only; history stays until retention removes it."""
        await self.teams.require_manager(team, actor)
        groups = [r for r in await self.store.of_team(team.id) if r.kind != RoomKind.DIRECT]
        room = next(
            (r for r in groups if name_or_id in (r.room_id, r.name) or r.name.casefold() == name_or_id.casefold()), None
        )
        if room is None:
            raise NotFound(f"{team.name} has no room {name_or_id!r}.")
        hs = self.homeserver
        await hs.unlink_child(team.space, room.room_id)
        levels = await hs.power_levels(room.room_id)
        levels["events_default"] = BOT_LEVEL
        await self.store.archive(room, self.clock.now_ms())
        await hs.set_power_levels(room.room_id, levels)
        notice = prose("This room was **archived**: it is read-only and no longer in the team's space.")
        await hs.send_notice(room.room_id, notice.plain, notice.html, mentions=notice.mentions)
        await self.audit.record(team, actor, AuditAction.ROOM_ARCHIVED, room.room_id, name=room.name)
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
        existing = await self.store.direct_between(team.id, pair)
        if existing:
            return existing, False
        room_id = await self.homeserver.create_direct_chat(
            [requester, other],
            room_version=self.room_version,
            retention_ms=self.teams.retention_ms(team),
            encryption=self.teams.room_encryption(team),
        )
        room = TeamRoom(room_id, team.id, RoomKind.DIRECT, f"{requester} & {other}", self.clock.now_ms(), members=pair)
        await self.store.insert(room)
        for user, peer in ((requester, other), (other, requester)):
            await self.homeserver.mark_direct(user, peer, room_id)
        await self.audit.record(team, requester, AuditAction.DIRECT_CHAT_CREATED, room_id, members=pair)
        return room, True
