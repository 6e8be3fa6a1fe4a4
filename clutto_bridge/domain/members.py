"""The Customer's control of people: invite, create accounts, roles, removal, ownership.

Roles become power levels in the space and every team room; after each change the
rooms are brought in line with the team's members (``sync_power_levels``), which is also
how a level changed by hand in a client is put back.

Inviting converges: inviting someone who already is a member completes what an interrupted
invite left out (the invites to the space and rooms, power levels, the audit record) and is
refused as "already a member" only when nothing was missing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db import member as membership
from clutto_bridge.db.account import Account, AccountStore
from clutto_bridge.db.member import Member, MemberStore
from clutto_bridge.db.team import Team, TeamStore
from clutto_bridge.domain import validation
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from clutto_bridge.domain.power import (
    corrected,
    creators_with_power,
    differences,
    expected_power_levels,
    level_of,
    within_reach,
)
from clutto_bridge.domain.service import SCIM_ACTOR, TeamService
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.spaces import BOT_LEVEL
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.members")

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class MemberChanges:
    """One change of a member's place in a team at a time, in this process.

    A membership event is handled in its room's lane, possibly after the member's removal
    began (it was sent before): read before the removal and acted on during it, a join would
    write "joined" over "removed", or be kicked by the outsider check with the outsider's
    reason before the removal reaches that room (the kick then keeps the wrong reason and
    the audit log an integration removal). Removal, the membership follow-up and the outsider
    check each read and act under the member's lock, so a late event sees the finished removal.
    """

    def __init__(self) -> None:
        # One per member of a team, as the notices' and welcomes' locks are one per person.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def of(self, team_id: str, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault((team_id, user_id), asyncio.Lock())


@dataclass(kw_only=True, eq=False, repr=False)
class MemberService:
    teams: TeamService
    store: MemberStore
    team_store: TeamStore
    accounts: AccountStore
    homeserver: Homeserver
    admin: SynapseAdmin
    audit: AuditLog
    consent: ConsentService
    settings: Settings
    clock: Clock
    changes: MemberChanges = field(default_factory=MemberChanges)

    async def active(self, team: Team) -> list[Member]:
        """Members who are part of the team now: invited or joined."""
        return [m for m in await self.store.of_team(team.id) if m.current]

    async def _active_member(self, team: Team, user_id: str) -> Member:
        member = await self.store.get(team.id, validation.user_id(user_id))
        if not member or not member.current:
            raise NotFound(f"{user_id} is not a member of {team.name}.")
        return member

    # --- adding people -------------------------------------------------------------

    async def invite(self, team: Team, user_id: str, role: str = "member", *, actor: str | None) -> Member:
        """Invite an existing account to the space and every team room with the role's level."""
        user_id = validation.user_id(user_id)
        role = validation.role(role)
        await self.teams.require_manager(team, actor)
        existing = await self.store.get(team.id, user_id)
        if existing and existing.current:
            if await self._complete(team, existing, actor):
                return existing
            raise Conflict(f"{user_id} is already a member of {team.name} ({existing.role}).")
        await self.teams.require_account(user_id)
        return await self._add(team, user_id, role, actor, created_by_bridge=False)

    async def _complete(self, team: Team, member: Member, actor: str | None) -> bool:
        """Finish an invite a stop interrupted: invite to every room where the member never had a
        membership (one they left or declined stays theirs), set power levels, write the audit
        record. True if anything was missing. The role stays the recorded one."""
        missing = [
            room_id
            for room_id in await self.teams.room_ids(team)
            if await self.homeserver.membership(room_id, member.user_id) is None
        ]
        for room_id in missing:
            await self.homeserver.invite_once(room_id, member.user_id)
        levels = await self.sync_power_levels(team)
        unrecorded = not await self._invite_recorded(team, member)
        if unrecorded:
            await self.audit.record(
                team,
                actor,
                AuditAction.MEMBER_INVITED,
                member.user_id,
                role=member.role,
                created_account=member.created_by_bridge,
                completed=True,
            )
        if missing or levels:
            log.info(
                "Completed the invite of %s to team %s: %d room(s), %d power level change(s)",
                member.user_id,
                team.id,
                len(missing),
                len(levels),
            )
        return bool(missing or levels or unrecorded)

    async def _invite_recorded(self, team: Team, member: Member) -> bool:
        # The founding owner joined with the team itself (same timestamp), never by an invite.
        if member.added_at <= team.created_at:
            return True
        entries = await self.audit.for_team(team.id, AuditAction.MEMBER_INVITED)
        return any(e.target == member.user_id and e.ts >= member.added_at for e in entries)

    async def create_account(
        self, team: Team, username: str, email: str | None, password: str, role: str = "member", *, actor: str | None
    ) -> Member:
        """Create a homeserver account (admin API) and add it. The password is not stored."""
        role = validation.role(role)
        await self.teams.require_manager(team, actor)
        if not isinstance(username, str) or not re.fullmatch(r"[a-z0-9._=\-/]{1,64}", username):
            raise InvalidInput("The user name may use a-z, 0-9 and . _ = - / (at most 64 characters).")
        # No email only from an identity provider (SCIM) that sent none: the account is made without one.
        if email is not None and (not isinstance(email, str) or not _EMAIL.fullmatch(email) or len(email) > 254):
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
        await self.accounts.add(Account(user_id, email, self.clock.now_ms()))
        log.info("Created account %s for team %s", user_id, team.id)
        return await self._add(team, user_id, role, actor, created_by_bridge=True)

    async def _add(self, team: Team, user_id: str, role: str, actor: str | None, *, created_by_bridge: bool) -> Member:
        now = self.clock.now_ms()
        if await self.store.get(team.id, user_id):
            await self.store.invite_again(team.id, user_id, role, now)
        else:
            await self.store.insert(Member(team.id, user_id, role, membership.INVITED, created_by_bridge, now))
        log.info("Inviting %s to team %s as %s", user_id, team.id, role)
        await self.teams.invite_everywhere(team, user_id)
        await self.sync_power_levels(team)
        await self.audit.record(
            team, actor, AuditAction.MEMBER_INVITED, user_id, role=role, created_account=created_by_bridge
        )
        invited = await self.store.get(team.id, user_id)
        assert invited is not None, "written above"
        return invited

    # --- changing and removing -----------------------------------------------------

    async def change_role(self, team: Team, user_id: str, role: str, *, actor: str | None) -> Member:
        [member] = await self.change_roles(team, {user_id: role}, actor=actor)
        return member

    async def change_roles(self, team: Team, roles: Mapping[str, str], *, actor: str | None) -> list[Member]:
        """Change several members' roles, each checked and audited, with one power level sync at the
        end (an identity provider's group of 100 admins is one sync of every room, not 100)."""
        checked = {user_id: validation.role(wanted) for user_id, wanted in roles.items()}
        await self.teams.require_manager(team, actor)
        changes = []
        for user_id, role in checked.items():
            member = await self._active_member(team, user_id)
            if member.role == "owner":
                raise NotAllowed("The owner's role changes only by transferring the team to another member.")
            if member.role == role:
                raise Conflict(f"{member.user_id} already is {role}.")
            changes.append((member, role))
        changed = []
        for member, role in changes:
            old = member.role
            await self.store.set_role(member, role)
            changed.append((member, old, role))
        await self.sync_power_levels(team)
        for member, old, role in changed:
            await self.audit.record(team, actor, AuditAction.ROLE_CHANGED, member.user_id, old=old, new=role)
        return [member for member, _, _ in changed]

    async def transfer(self, team: Team, user_id: str, *, actor: str | None) -> Team:
        """Make another member the owner; the old owner becomes an admin."""
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} may transfer it.")
        user_id = validation.user_id(user_id)
        if user_id == team.owner:
            raise InvalidInput(f"{user_id} already owns {team.name}.")
        new_owner = await self._active_member(team, user_id)
        previous = team.owner
        await self.team_store.transfer(team, new_owner.user_id)
        await self.sync_power_levels(team)
        await self.audit.record(
            team, actor, AuditAction.OWNERSHIP_TRANSFERRED, new_owner.user_id, previous_owner=previous
        )
        return team

    async def remove(self, team: Team, user_id: str, *, actor: str | None, deactivate: bool = False) -> Member:
        """Deprovision: kick from the space, every team room and individual chat, with a reason."""
        await self.teams.require_manager(team, actor)
        member = await self._active_member(team, user_id)
        if member.role == "owner":
            raise NotAllowed("The owner cannot be removed; transfer the team to another member first.")
        if deactivate:
            await self.check_deactivatable(team, member)
        reason = f"Removed from the team {team.name}" + (
            " by the organisation's identity provider"
            if actor and actor.startswith(SCIM_ACTOR)
            else f" by {actor}"
            if actor
            else " by the operator"
        )
        async with self.changes.of(team.id, member.user_id):
            await self.store.set_membership(member, membership.REMOVED)
            for room_id in await self.teams.room_ids(team, include_archived=True):
                # Not in the room (left, never joined an individual chat): nothing to take back.
                await self.homeserver.kick(room_id, member.user_id, reason)
        await self.sync_power_levels(team)
        if deactivate:
            await self.admin.deactivate(member.user_id, erase=False)
        await self.audit.record(
            team, actor, AuditAction.MEMBER_REMOVED, member.user_id, deactivated=deactivate, reason=reason
        )
        return member

    async def check_deactivatable(self, team: Team, member: Member) -> None:
        """Only an account Clutto created, and in no other team, is Clutto's to deactivate."""
        if not member.created_by_bridge:
            raise NotAllowed(f"{member.user_id} was not created by Clutto; only such accounts can be deactivated.")
        if await self.store.current_elsewhere(member.user_id, team.id):
            raise NotAllowed(f"{member.user_id} still belongs to another team; it was removed from none.")

    async def membership_changed(self, space_id: str, user_id: str, new: str, previous: str | None) -> None:
        """Follow what a member did with the space invite: joined, declined, or left."""
        team = await self.team_store.get_by_space(space_id)
        if team is None:
            return
        if new == "join":
            state = membership.JOINED
        elif new in ("leave", "ban"):
            state = membership.DECLINED if previous == "invite" else membership.LEFT
        else:
            return
        async with self.changes.of(team.id, user_id):
            await self._follow(team, user_id, state)

    async def _follow(self, team: Team, user_id: str, state: str) -> None:
        member = await self.store.get(team.id, user_id)
        if not member or member.membership == membership.REMOVED:
            return
        if member.membership != state:
            await self.store.set_membership(member, state)
            log.info("%s is now %s in team %s", user_id, state, member.team_id)
            if state == membership.DECLINED:
                await self.audit.record(team, user_id, AuditAction.INVITE_DECLINED, user_id)

    # --- power levels ----------------------------------------------------------------

    async def sync_all_power_levels(self) -> int:
        """Every active team's rooms brought in line, once per start: levels a new version sets
        (the invite level of issue 23), a changed ``bridge.power_levels``, consent blocks, and
        changes made while the bridge was down. The number of rooms that changed."""
        changed = 0
        for team in await self.teams.active():
            try:
                changed += len(await self.sync_power_levels(team))
            except MatrixRequestError as e:
                # One team's unreachable room must not hold up the others; the next start tries again.
                log.warning("Could not check the power levels of team %s: %s", team.id, e)
        return changed

    async def sync_power_levels(self, team: Team, only_room: str | None = None, actor: str | None = None) -> list[str]:
        """Bring power levels in line with the team's roles; return the rooms that changed."""
        hs = self.homeserver
        members = await self.store.of_team(team.id)
        levels = self.settings.bridge.power_levels
        rooms = await self.teams.room_ids(team) if only_room is None else [only_room]
        blocked = await self.consent.blocked(members)
        changed = []
        for room_id in rooms:
            expected = expected_power_levels(
                hs.bot_mxid, team.owner, members, levels, space=room_id == team.space_id, blocked=blocked
            )
            current = await hs.power_levels(room_id)
            if level_of(current, hs.bot_mxid) < BOT_LEVEL:  # a room a member made and added to the space
                expected = await self._within_reach(room_id, current, expected)
            wrong = differences(current, expected)
            if wrong:
                await hs.set_power_levels(room_id, corrected(current, expected))
                changed.append(room_id)
                if actor:
                    await self.audit.record(
                        team, actor, AuditAction.POWER_LEVELS_REVERTED, room_id, changed=sorted(wrong)
                    )
        return changed

    async def _within_reach(self, room_id: str, current: dict, expected: dict) -> dict:
        """The team's levels as far as the bot can set them where it is not above everyone."""
        bot = self.homeserver.bot_mxid
        creators = creators_with_power(await self.homeserver.create_event(room_id))
        bot_level = float("inf") if bot in creators else level_of(current, bot)
        return within_reach(current, expected, bot=bot, bot_level=bot_level, creators=creators)
