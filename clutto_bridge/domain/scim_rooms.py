"""SCIM groups that are rooms: a group the identity provider creates (``POST /Groups``), or one
named in ``scim.room_groups``, is a room of the team's space whose members are the group's.

The room is made by the operation ``room create`` uses (``RoomService.create_group``), with only
the group's members invited; its kind keeps later members of the team from being invited to it,
and its join rule is ``invite`` (not the space's restricted rule), so a member of the team who
is not in the group cannot join it either. A group named in ``scim.room_groups`` takes over the
team's room of that name if there is one: the room becomes invite-only, the provisioned users in
it who are not in the group are removed and invites for others are withdrawn. Only provisioned
users are managed: the owner or someone added by hand stays where they are, but once out of a
group's room, only the group brings them back in. A deleted group's room is archived and stays
invite-only: its history is the group's, not the team's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.config import ScimSettings
from clutto_bridge.db.scim import ScimGroup, ScimStore, ScimUser
from clutto_bridge.db.team import RoomKind, RoomStore, Team
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import Conflict, InvalidInput
from clutto_bridge.domain.rooms import RoomService
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.spaces import INVITE_ONLY
from clutto_bridge.policy.audit_actions import AuditAction


@dataclass(frozen=True)
class RoomGroup:
    """A room group as the provider reads it: the row, the room's name and the group's users."""

    row: ScimGroup
    name: str
    users: list[ScimUser]


async def provisioned_users(store: ScimStore, team: Team, wanted: set[str]) -> dict[str, ScimUser]:
    """Every provisioned user of the team by SCIM id; a 400 if ``wanted`` names one it has not."""
    everyone = {u.id: u for u in await store.users_of(team.id)}
    unknown = wanted - everyone.keys()
    if unknown:
        raise InvalidInput(f"No provisioned user {sorted(unknown)[0]!r} in this team.")
    return everyone


@dataclass(kw_only=True, eq=False, repr=False)
class ScimRoomGroups:
    store: ScimStore
    rooms: RoomService
    room_store: RoomStore
    teams: TeamService
    homeserver: Homeserver
    audit: AuditLog
    clock: Clock
    settings: ScimSettings
    role_groups: frozenset[str]
    writable: Callable[[Team], Awaitable[None]]

    async def _view(self, row: ScimGroup, everyone: dict[str, ScimUser]) -> RoomGroup:
        room = await self.room_store.get(row.room_id)
        ids = await self.store.group_members(row.id)
        users = [u for u in everyone.values() if u.id in ids]
        return RoomGroup(row, room.name if room else row.room_id, users)

    async def all(self, team: Team) -> list[RoomGroup]:
        everyone = await provisioned_users(self.store, team, set())
        return [await self._view(row, everyone) for row in await self.store.groups_of(team.id)]

    async def get(self, team: Team, group_id: str) -> RoomGroup | None:
        row = await self.store.group(team.id, group_id)
        return await self._view(row, await provisioned_users(self.store, team, set())) if row else None

    async def of_user(self, user: ScimUser) -> list[tuple[str, str]]:
        """(group id, room name) of each room group the user is in."""
        found = []
        for group_id in await self.store.groups_of_user(user.id):
            row = await self.store.group(user.team_id, group_id)
            room = row and await self.room_store.get(row.room_id)
            if row and room:
                found.append((row.id, room.name))
        return found

    async def create(self, team: Team, name: str, scim_ids: set[str], *, actor: str) -> RoomGroup:
        """A new group: a new room of the space, or the team's room of a name in ``scim.room_groups``."""
        await self.writable(team)
        if name.strip().casefold() in self.role_groups:
            raise Conflict(f"{name.strip()!r} is one of the team's role groups; it exists already.")
        await provisioned_users(self.store, team, scim_ids)
        room = await self.rooms.named(team, name.strip())
        taken_over = room is not None
        if room is not None:
            if any(g.room_id == room.room_id for g in await self.store.groups_of(team.id)):
                raise Conflict(f"The group {room.name!r} exists already.")
            if room.kind != RoomKind.GROUP or room.name.casefold() not in self._configured():
                raise Conflict(
                    f"{team.name} already has a room named {room.name!r}; the operator names it in "
                    "scim.room_groups for the identity provider to manage its members."
                )
            # First closed (nobody new comes in through the space), then the provider's.
            await self.homeserver.set_state(room.room_id, "m.room.join_rules", dict(INVITE_ONLY))
            await self.room_store.set_kind(room, RoomKind.SCIM_GROUP)
        else:
            # Nobody invited yet: the group's members are invited below, once recorded, so that
            # the gate (which admits the group's members only) lets each of them join.
            room = await self.rooms.create_group(team, name, actor=actor, kind=RoomKind.SCIM_GROUP)
        now = self.clock.now_ms()
        row = ScimGroup(str(uuid.uuid4()), team.id, room.room_id, 1, now, now)
        await self.store.add_group(row)
        await self.set_members(team, row, scim_ids, actor=actor, created=True)
        if taken_over:
            removed = await self._remove_others(team, row, room.name)
            await self.audit.record(
                team, actor, AuditAction.SCIM_GROUP_LINKED, room.room_id, scim_id=row.id, name=name, removed=removed
            )
        view = await self.get(team, row.id)
        assert view is not None, "added above"
        return view

    async def _remove_others(self, team: Team, row: ScimGroup, name: str) -> list[str]:
        """In a taken-over room, the provider decides: its provisioned users who are not in the group
        are removed, and every invite not for the group's members is withdrawn. Someone joined whom
        the provider does not know (the owner, a member added by hand) stays."""
        everyone = await provisioned_users(self.store, team, set())
        group = {everyone[i].user_id for i in await self.store.group_members(row.id) if i in everyone}
        provisioned = {u.user_id for u in everyone.values()}
        removed = []
        for event in await self.homeserver.room_state(row.room_id) or []:
            user_id, membership = event.get("state_key"), (event.get("content") or {}).get("membership")
            if event.get("type") != "m.room.member" or not isinstance(user_id, str) or user_id in group:
                continue
            if membership == "invite" or (membership == "join" and user_id in provisioned):
                removed.append(user_id)
        reason = f"Not in the group {name} of the organisation's identity provider, which decides who is here"
        for user_id in sorted(removed):
            await self.homeserver.kick(row.room_id, user_id, reason)
        return sorted(removed)

    def _configured(self) -> set[str]:
        return {n.casefold() for n in self.settings.room_groups}

    async def set_members(
        self, team: Team, row: ScimGroup, scim_ids: set[str], *, actor: str, created: bool = False
    ) -> None:
        """Make the group's users exactly ``scim_ids``: who joins is invited to the room (if a
        current member of the team), who leaves is removed from it."""
        await self.writable(team)
        everyone = await provisioned_users(self.store, team, scim_ids)
        before = await self.store.group_members(row.id)
        added, removed = scim_ids - before, before - scim_ids
        room = await self.room_store.get(row.room_id)
        name = room.name if room else row.room_id
        for scim_id in sorted(added):
            await self.store.add_group_member(row.id, scim_id)
            if await self.teams.role_of(team, everyone[scim_id].user_id) is not None:
                await self.homeserver.invite_once(row.room_id, everyone[scim_id].user_id)
        for scim_id in sorted(removed):
            await self.store.remove_group_member(row.id, scim_id)
            reason = f"Removed from the group {name} by the organisation's identity provider"
            await self.homeserver.kick(row.room_id, everyone[scim_id].user_id, reason)
        if not (added or removed):
            return
        if not created:
            await self.store.touch_group(row, self.clock.now_ms())
        await self.audit.record(
            team,
            actor,
            AuditAction.SCIM_GROUP_MEMBERS_CHANGED,
            row.room_id,
            scim_id=row.id,
            added=sorted(everyone[i].user_id for i in added),
            removed=sorted(everyone[i].user_id for i in removed),
        )

    async def delete(self, team: Team, row: ScimGroup, *, actor: str) -> None:
        """The group goes; its room is archived (read-only, out of the space), as ``room archive`` does."""
        await self.writable(team)
        room = await self.room_store.get(row.room_id)
        if room is not None and room.archived_at is None:
            await self.rooms.archive_group(team, room.room_id, actor=actor)
        await self.store.delete_group(row.id)

    async def rejoin(self, team: Team, user: ScimUser) -> None:
        """A person activated again is invited back to the rooms of their groups."""
        for group_id in await self.store.groups_of_user(user.id):
            row = await self.store.group(team.id, group_id)
            if row is not None:
                await self.homeserver.invite_once(row.room_id, user.user_id)
