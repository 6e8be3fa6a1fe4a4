"""The Customer's control of people: invite, create accounts, roles, removal, ownership.

Roles become power levels in the space and every team room; after each change the
rooms are brought in line with the team's members (``sync_power_levels``), which is also
how a level changed by hand in a client is put back.
"""

from __future__ import annotations

import logging
import re

from mautrix.api import Method, Path
from mautrix.errors import MatrixRequestError
from mautrix.types import EventType

from clutto_bridge.db import member as membership
from clutto_bridge.db.audit import AuditEntry, AuditLog
from clutto_bridge.db.member import Member
from clutto_bridge.db.team import Team, TeamRoom
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.teams import validation
from clutto_bridge.teams.consent import ConsentService
from clutto_bridge.teams.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.teams.power import corrected, differences, expected_power_levels
from clutto_bridge.teams.service import TeamService

log = logging.getLogger("clutto.members")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ACTIVE = (membership.INVITED, membership.JOINED)


class MemberService:
    def __init__(self, teams: TeamService, admin: SynapseAdmin, audit: AuditLog, consent: ConsentService) -> None:
        self.teams = teams
        self.admin = admin
        self.audit = audit
        self.consent = consent
        self.db = teams.db
        self.settings = teams.settings
        self.clock = teams.clock

    async def active(self, team: Team) -> list[Member]:
        return [m for m in await Member.of_team(self.db, team.id) if m.membership in ACTIVE]

    async def record(self, team: Team, actor: str | None, action: str, target: str | None, **detail) -> None:
        await self.audit.record(AuditEntry(self.clock.now_ms(), team.id, actor, action, target, detail))

    async def _active_member(self, team: Team, user_id: str) -> Member:
        member = await Member.get(self.db, team.id, validation.user_id(user_id))
        if not member or member.membership not in ACTIVE:
            raise NotFound(f"{user_id} is not a member of {team.name}.")
        return member

    # --- adding people -------------------------------------------------------------

    async def invite(self, team: Team, user_id: str, role: str = "member", *, actor: str | None) -> Member:
        """Invite an existing account to the space and every team room with the role's level."""
        user_id = validation.user_id(user_id)
        role = validation.role(role)
        await self.teams.require_manager(team, actor)
        existing = await Member.get(self.db, team.id, user_id)
        if existing and existing.membership in ACTIVE:
            raise Conflict(f"{user_id} is already a member of {team.name} ({existing.role}).")
        await self.teams.require_account(user_id)
        return await self._add(team, user_id, role, actor, created_by_bridge=False)

    async def create_account(
        self, team: Team, username: str, email: str, password: str, role: str = "member", *, actor: str | None
    ) -> Member:
        """Create a homeserver account (admin API) and add it. The password is not stored."""
        role = validation.role(role)
        await self.teams.require_manager(team, actor)
        if not isinstance(username, str) or not re.fullmatch(r"[a-z0-9._=\-/]{1,64}", username):
            raise InvalidInput("The user name may use a-z, 0-9 and . _ = - / (at most 64 characters).")
        if not isinstance(email, str) or not _EMAIL.fullmatch(email) or len(email) > 254:
            raise InvalidInput(f"{email!r} is not an email address.")
        if not isinstance(password, str) or len(password) < 8:
            raise InvalidInput("The initial password must have at least 8 characters.")
        user_id = f"@{username}:{self.settings.homeserver.domain}"
        try:
            if await self.admin.account_exists(user_id):
                raise Conflict(f"{user_id} already exists; invite it instead.")
            await self.admin.create_account(user_id, password, email, None)
        except AdminUnavailable as e:
            raise NotAllowed(f"Creating accounts needs the homeserver admin API: {e}.") from None
        await self.db.execute(
            "INSERT INTO account (user_id, email, created_at) VALUES ($1, $2, $3)",
            user_id, email, self.clock.now_ms(),
        )
        log.info("Created account %s for team %s", user_id, team.id)
        return await self._add(team, user_id, role, actor, created_by_bridge=True)

    async def _add(self, team: Team, user_id: str, role: str, actor: str | None, *, created_by_bridge: bool) -> Member:
        now = self.clock.now_ms()
        existing = await Member.get(self.db, team.id, user_id)
        if existing:
            await self.db.execute(
                "UPDATE team_member SET role=$1, membership=$2, added_at=$3 WHERE team_id=$4 AND user_id=$5",
                role, membership.INVITED, now, team.id, user_id,
            )
        else:
            await Member(team.id, user_id, role, membership.INVITED, created_by_bridge, now).insert(self.db)
        log.info("Inviting %s to team %s as %s", user_id, team.id, role)
        await self.teams.invite_everywhere(team, user_id)
        await self.sync_power_levels(team)
        await self.record(team, actor, "member_invited", user_id, role=role, created_account=created_by_bridge)
        return await Member.get(self.db, team.id, user_id)

    # --- changing and removing -----------------------------------------------------

    async def change_role(self, team: Team, user_id: str, role: str, *, actor: str | None) -> Member:
        role = validation.role(role)
        await self.teams.require_manager(team, actor)
        member = await self._active_member(team, user_id)
        if member.role == "owner":
            raise NotAllowed("The owner's role changes only by transferring the team to another member.")
        if member.role == role:
            raise Conflict(f"{member.user_id} already is {role}.")
        await self.db.execute(
            "UPDATE team_member SET role=$1 WHERE team_id=$2 AND user_id=$3", role, team.id, member.user_id
        )
        await self.sync_power_levels(team)
        await self.record(team, actor, "role_changed", member.user_id, old=member.role, new=role)
        member.role = role
        return member

    async def transfer(self, team: Team, user_id: str, *, actor: str | None) -> Team:
        """Make another member the owner; the old owner becomes an admin."""
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} may transfer it.")
        user_id = validation.user_id(user_id)
        if user_id == team.owner:
            raise InvalidInput(f"{user_id} already owns {team.name}.")
        new_owner = await self._active_member(team, user_id)
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE team_member SET role='admin' WHERE team_id=$1 AND user_id=$2", team.id, team.owner)
            await conn.execute("UPDATE team_member SET role='owner' WHERE team_id=$1 AND user_id=$2", team.id, new_owner.user_id)
            await conn.execute("UPDATE team SET owner=$1 WHERE id=$2", new_owner.user_id, team.id)
        previous, team.owner = team.owner, new_owner.user_id
        await self.sync_power_levels(team)
        await self.record(team, actor, "ownership_transferred", new_owner.user_id, previous_owner=previous)
        return team

    async def remove(self, team: Team, user_id: str, *, actor: str | None, deactivate: bool = False) -> Member:
        """Deprovision: kick from the space, every team room and individual chat, with a reason."""
        await self.teams.require_manager(team, actor)
        member = await self._active_member(team, user_id)
        if member.role == "owner":
            raise NotAllowed("The owner cannot be removed; transfer the team to another member first.")
        if deactivate:
            await self._check_deactivatable(team, member)
        await member.set_membership(self.db, membership.REMOVED)
        reason = f"Removed from the team {team.name}" + (f" by {actor}" if actor else " by the operator")
        rooms = [team.space_id] + [r.room_id for r in await TeamRoom.of_team(self.db, team.id, include_archived=True)]
        for room_id in rooms:
            await _kick(self.teams, room_id, member.user_id, reason)
        await self.sync_power_levels(team)
        if deactivate:
            await self.admin.deactivate(member.user_id, erase=False)
        await self.record(team, actor, "member_removed", member.user_id, deactivated=deactivate, reason=reason)
        return member

    async def _check_deactivatable(self, team: Team, member: Member) -> None:
        if not member.created_by_bridge:
            raise NotAllowed(f"{member.user_id} was not created by Clutto; only such accounts can be deactivated.")
        other = await self.db.fetchval(
            "SELECT COUNT(*) FROM team_member WHERE user_id=$1 AND team_id<>$2 AND membership IN ('invited','joined')",
            member.user_id, team.id,
        )
        if other:
            raise NotAllowed(f"{member.user_id} still belongs to another team; it was removed from none.")

    async def membership_changed(self, space_id: str, user_id: str, new: str, previous: str | None) -> None:
        """Follow what a member did with the space invite: joined, declined, or left."""
        team = await Team.get_by_space(self.db, space_id)
        member = team and await Member.get(self.db, team.id, user_id)
        if not member or member.membership == membership.REMOVED:
            return
        if new == "join":
            state = membership.JOINED
        elif new in ("leave", "ban"):
            state = membership.DECLINED if previous == "invite" else membership.LEFT
        else:
            return
        if member.membership != state:
            await member.set_membership(self.db, state)
            log.info("%s is now %s in team %s", user_id, state, team.id)
            if state == membership.DECLINED:
                await self.record(team, user_id, "invite_declined", user_id)

    # --- power levels ----------------------------------------------------------------

    async def sync_power_levels(self, team: Team, only_room: str | None = None, actor: str | None = None) -> list[str]:
        """Bring power levels in line with the team's roles; return the rooms that changed."""
        bot = self.teams.bot
        members = await Member.of_team(self.db, team.id)
        levels = self.settings.bridge.power_levels
        rooms = [team.space_id] + [r.room_id for r in await TeamRoom.of_team(self.db, team.id)]
        blocked = await self.consent.blocked(members)
        changed = []
        for room_id in rooms if only_room is None else [only_room]:
            expected = expected_power_levels(
                bot.mxid, team.owner, members, levels, space=room_id == team.space_id, blocked=blocked
            )
            current = await bot.api.request(Method.GET, Path.v3.rooms[room_id].state["m.room.power_levels"])
            wrong = differences(current, expected)
            if wrong:
                await bot.send_state_event(room_id, EventType.ROOM_POWER_LEVELS, corrected(current, expected))
                changed.append(room_id)
                if actor:
                    await self.record(team, actor, "power_levels_reverted", room_id, changed=sorted(wrong))
        return changed


async def _kick(teams: TeamService, room_id: str, user_id: str, reason: str) -> None:
    try:
        await teams.bot.kick_user(room_id, user_id, reason=reason)
    except MatrixRequestError as e:
        # Not in the room (left, never joined an individual chat): nothing to take back.
        log.debug("Kicking %s from %s: %s", user_id, room_id, e)
