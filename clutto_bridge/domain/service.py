"""Teams: create one as a space with its rooms; find teams and their members' roles.

Every step that talks to the homeserver is recorded as it completes, so a team whose
creation was interrupted by a crash is finished on the next start, never built twice.
Before a space or room is asked for, its creation is recorded as pending under a marker the
room carries; a crash between the homeserver's answer and the record leaves a room that the
next start recognises by that marker and deletes (``domain/orphans.py``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from clutto_bridge import testhooks
from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db import member as membership
from clutto_bridge.db.member import Member, MemberStore
from clutto_bridge.db.team import CreationKind, RoomCreation, RoomKind, RoomStore, Team, TeamRoom, TeamState, TeamStore
from clutto_bridge.domain import validation
from clutto_bridge.domain.errors import NotAllowed, NotFound, TeamExists, UnknownUser
from clutto_bridge.domain.orphans import Orphans
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.matrix.spaces import creation_marker
from clutto_bridge.policy.encryption import MAX_ROTATION_MS, room_encryption
from clutto_bridge.policy.retention import RetentionBounds

log = logging.getLogger("clutto.teams")

MANAGERS = ("owner", "admin")
# The actor of a change an identity provider made through SCIM: ``scim:<token id>``. A token
# belongs to one team and is checked before any operation; no Matrix user ID starts like this.
SCIM_ACTOR = "scim:"


@dataclass
class TeamView:
    """A team with its rooms and members, as commands and the API show it."""

    team: Team
    rooms: list[TeamRoom]
    members: list[Member]


@dataclass(kw_only=True, eq=False, repr=False)
class TeamService:
    store: TeamStore
    rooms: RoomStore
    members: MemberStore
    homeserver: Homeserver
    settings: Settings
    clock: Clock
    retention_bounds: RetentionBounds
    orphans: Orphans
    boot: str  # this process, in the creations it records

    def retention_ms(self, team: Team) -> int:
        """The team's maximum message lifetime, as m.room.retention writes it."""
        return self.retention_bounds.effective(team.retention_seconds) * 1000

    def room_encryption(self, team: Team | None) -> dict | None:
        """The m.room.encryption a new room of ``team`` (or the chat with the bot) starts with."""
        return room_encryption(self.settings.policy.encryption, self.retention_ms(team) if team else MAX_ROTATION_MS)

    # --- reading -------------------------------------------------------------------

    async def get(self, team_id: str) -> Team:
        team = await self.store.get(team_id)
        if not team:
            raise NotFound(f"There is no team with id {team_id!r}.")
        return team

    async def view(self, team: Team) -> TeamView:
        return TeamView(team, await self.rooms.of_team(team.id), await self.members.of_team(team.id))

    async def all(self) -> list[Team]:
        return await self.store.all()

    async def active(self) -> list[Team]:
        return await self.store.in_state(TeamState.ACTIVE)

    async def of_user(self, user_id: str) -> list[Team]:
        return await self.store.of_user(user_id)

    async def for_room(self, room_id: str) -> Team | None:
        return await self.store.get_by_room(room_id)

    async def role_of(self, team: Team, user_id: str) -> str | None:
        member = await self.members.get(team.id, user_id)
        return member.role if member and member.current else None

    async def room_ids(self, team: Team, *, include_archived: bool = False) -> list[str]:
        """The space and every room of the team."""
        rooms = await self.rooms.of_team(team.id, include_archived=include_archived)
        return [team.space] + [r.room_id for r in rooms]

    # --- creating ------------------------------------------------------------------

    async def check_new(self, name: str, owner: str, *, key: str | None = None) -> str:
        """Everything ``create`` refuses, checked without changing anything; the name as it will be.
        With ``key`` (the command's event id), the team that key already created is no refusal."""
        earlier = await self.created_by(key)
        if earlier is not None:
            return earlier.name
        name = validation.team_name(name, self.settings.bridge.team_name_max_length)
        owner = validation.user_id(owner)
        if owner.split(":", 1)[1] != self.settings.homeserver.domain:
            raise NotAllowed(f"Teams are owned by accounts on {self.settings.homeserver.domain}; {owner} is not one.")
        await self.require_account(owner)
        await self._require_free_name(name)
        return name

    async def _require_free_name(self, name: str) -> None:
        existing = await self.store.get_by_name(name)
        if existing:
            raise TeamExists(f"A team named {existing.name!r} already exists. Choose another name.")

    async def created_by(self, key: str | None) -> Team | None:
        """The team that the command with event id ``key`` created, if any."""
        return await self.store.get_by_creating_event(key) if key else None

    async def create(self, name: str, owner: str, *, key: str | None = None) -> Team:
        """Create a team owned by ``owner``. Names are unique: a second create is refused.

        ``key`` (a command's event id) makes a repeat of the same command finish and return
        the team it created instead of refusing the name."""
        earlier = await self.created_by(key)
        if earlier is not None:
            if earlier.state == TeamState.CREATING:
                await self._build(earlier)
            return earlier
        name = await self.check_new(name, owner)
        owner = owner.strip()
        now = self.clock.now_ms()
        trial = self.settings.trial
        team = Team(
            id="t" + secrets.token_hex(6),
            name=name,
            owner=owner,
            space_id=None,
            state=TeamState.CREATING,
            plan="trial",
            created_at=now,
            trial_ends_at=now + trial.length * 1000,
            purge_after=now + (trial.length + trial.grace) * 1000,
        )
        try:
            await self.store.create(
                team, Member(team.id, owner, "owner", membership.INVITED, False, now), created_by_event=key
            )
        except Exception:
            await self._require_free_name(name)  # another create took the name meanwhile
            raise
        log.info("Creating team %s (%s) for %s", team.id, name, owner)
        await self._build(team)
        return team

    async def finish_interrupted(self) -> int:
        """Delete what interrupted creations left to no team, then finish the teams whose
        creation a crash or restart interrupted; return how many teams."""
        await self.orphans.purge()
        teams = await self.store.in_state(TeamState.CREATING)
        for team in teams:
            log.info("Finishing the creation of team %s (%s)", team.id, team.name)
            await self._build(team)
        return len(teams)

    async def _build(self, team: Team) -> None:
        s = self.settings
        if team.space_id is None:
            marker = await self._begin_creation(team, CreationKind.SPACE)
            space_id = await self.homeserver.create_space(
                name=team.name,
                owner=team.owner,
                levels=s.bridge.power_levels,
                room_version=s.bridge.room_version,
                retention_ms=self.retention_ms(team),
                marker=creation_marker(team.id, marker),
            )
            testhooks.exit_if("EXIT_AFTER_SPACE_CREATED", team.name)
            await self.store.set_space(team, space_id, creation=marker)
            testhooks.exit_if("EXIT_AFTER_SPACE", team.name)
        existing = await self.rooms.of_team(team.id, kind=RoomKind.GROUP)
        for room in existing:  # a stop may have come between recording a room and linking it
            await self.homeserver.link_child(team.space, room.room_id, s.homeserver.domain)
        names = {room.name for room in existing}
        for name in s.bridge.default_rooms:
            if name not in names:
                await self.add_group_room(team, name)
        await self.invite_everywhere(team, team.owner)
        await self.store.set_state(team, TeamState.ACTIVE)
        log.info("Team %s is ready: space %s", team.id, team.space_id)

    async def _begin_creation(self, team: Team, kind: CreationKind) -> str:
        """Record that a space or room of ``team`` is about to be created; its marker."""
        marker = secrets.token_hex(12)
        await self.rooms.begin_creation(RoomCreation(marker, team.id, kind, self.boot, self.clock.now_ms()))
        return marker

    async def add_group_room(self, team: Team, name: str, kind: RoomKind = RoomKind.GROUP) -> TeamRoom:
        """A room in the team's space with the team's settings, recorded before it is linked; an
        identity provider's group room (``SCIM_GROUP``) is invite-only, not open to the space."""
        s = self.settings
        marker = await self._begin_creation(team, CreationKind.ROOM)
        room_id = await self.homeserver.create_group_room(
            space_id=team.space_id,
            name=name,
            owner=team.owner,
            levels=s.bridge.power_levels,
            room_version=s.bridge.room_version,
            server_name=s.homeserver.domain,
            retention_ms=self.retention_ms(team),
            marker=creation_marker(team.id, marker),
            encryption=self.room_encryption(team),
            invite_only=kind == RoomKind.SCIM_GROUP,
        )
        testhooks.exit_if("EXIT_AFTER_ROOM_CREATED", f"{team.name}/{name}")
        room = TeamRoom(room_id, team.id, kind, name, self.clock.now_ms())
        await self.rooms.insert(room, creation=marker)
        await self.homeserver.link_child(team.space, room_id, s.homeserver.domain)
        return room

    # --- members -------------------------------------------------------------------

    async def require_account(self, user_id: str) -> None:
        """Refuse user IDs the homeserver does not know, before anything is changed."""
        try:
            await self.homeserver.profile(user_id)
        except MatrixRequestError as e:
            raise UnknownUser(self._lookup_failure(user_id, e.http_status)) from None

    def _lookup_failure(self, user_id: str, status: int) -> str:
        """Why an account could not be looked up, in words (the status only as a detail)."""
        domain = self.settings.homeserver.domain
        server = user_id.split(":", 1)[1]
        # Synapse answers 404 for unknown users, sometimes without M_NOT_FOUND.
        if status == 404:
            return (
                f"{user_id} does not exist on the homeserver."
                if server == domain
                else f"{user_id} does not exist on its homeserver ({server})."
            )
        if server == domain:
            return f"The homeserver could not look up {user_id} just now (error {status}); try again later."
        if status in (401, 403):
            return (
                f"{user_id} cannot be invited: it is an account on another homeserver ({server}), and looking it "
                f"up there was refused. Users of other homeservers can join a team only when {domain} is allowed "
                "to talk to theirs; ask the operator."
            )
        return (
            f"{user_id} is an account on another homeserver ({server}), which could not be reached to look it up "
            f"(error {status}). Check the user ID, or try again later."
        )

    async def require_manager(self, team: Team, actor: str | None) -> None:
        """Only the owner and admins manage a team; ``None`` is the operator."""
        if actor is not None and not actor.startswith(SCIM_ACTOR) and await self.role_of(team, actor) not in MANAGERS:
            raise NotAllowed(f"Only the owner or an admin of {team.name} may do that.")

    async def invite_everywhere(self, team: Team, user_id: str) -> None:
        await self.homeserver.invite_once(team.space, user_id)
        testhooks.exit_if("EXIT_AFTER_SPACE_INVITE", user_id)
        for room in await self.rooms.of_team(team.id, kind=RoomKind.GROUP):
            await self.homeserver.invite_once(room.room_id, user_id)
