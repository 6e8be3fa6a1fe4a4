"""Teams: create one as a space with its rooms; find teams and their members' roles.

Every step that talks to the homeserver is recorded as it completes, so a team whose
creation was interrupted by a crash is finished on the next start, never built twice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from mautrix.appservice import AppService, IntentAPI
from mautrix.errors import MatrixRequestError
from mautrix.util.async_db import Database

from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db import member as membership
from clutto_bridge.db.member import Member
from clutto_bridge.db.team import ACTIVE, CREATING, GROUP, Team, TeamRoom
from clutto_bridge.matrix import spaces
from clutto_bridge.policy.retention import RetentionBounds
from clutto_bridge.teams import validation
from clutto_bridge.teams.errors import NotAllowed, NotFound, TeamExists, UnknownUser

log = logging.getLogger("clutto.teams")

MANAGERS = ("owner", "admin")


@dataclass
class TeamView:
    """A team with its rooms and members, as commands and the API show it."""

    team: Team
    rooms: list[TeamRoom]
    members: list[Member]

    def to_json(self) -> dict:
        t = self.team
        return {
            "id": t.id,
            "name": t.name,
            "owner": t.owner,
            "space_id": t.space_id,
            "state": t.state,
            "plan": t.plan,
            "created_at": t.created_at,
            "trial_ends_at": t.trial_ends_at,
            "purge_after": t.purge_after,
            "rooms": [{"room_id": r.room_id, "name": r.name, "kind": r.kind} for r in self.rooms],
            "members": [
                {"user_id": m.user_id, "role": m.role, "membership": m.membership} for m in self.members
            ],
        }


class TeamService:
    def __init__(self, db: Database, appservice: AppService, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.appservice = appservice
        self.settings = settings
        self.clock = clock
        r = settings.retention
        self.retention_bounds = RetentionBounds(r.min, r.max, r.default)

    def retention_ms(self, team: Team) -> int:
        """The team's maximum message lifetime, as m.room.retention writes it."""
        return self.retention_bounds.effective(team.retention_seconds) * 1000

    @property
    def bot(self) -> IntentAPI:
        return self.appservice.intent

    # --- reading -------------------------------------------------------------------

    async def get(self, team_id: str) -> Team:
        team = await Team.get(self.db, team_id)
        if not team:
            raise NotFound(f"There is no team with id {team_id!r}.")
        return team

    async def view(self, team: Team) -> TeamView:
        return TeamView(team, await TeamRoom.of_team(self.db, team.id), await Member.of_team(self.db, team.id))

    async def all(self) -> list[Team]:
        return await Team.all(self.db)

    async def of_user(self, user_id: str) -> list[Team]:
        return await Team.of_user(self.db, user_id)

    async def for_room(self, room_id: str) -> Team | None:
        return await Team.get_by_room(self.db, room_id)

    async def role_of(self, team: Team, user_id: str) -> str | None:
        member = await Member.get(self.db, team.id, user_id)
        return member.role if member and member.membership in (membership.INVITED, membership.JOINED) else None

    # --- creating ------------------------------------------------------------------

    async def create(self, name: str, owner: str) -> Team:
        """Create a team owned by ``owner``. Names are unique: a second create is refused."""
        name = validation.team_name(name, self.settings.bridge.team_name_max_length)
        owner = validation.user_id(owner)
        if owner.split(":", 1)[1] != self.settings.homeserver.domain:
            raise NotAllowed(f"Teams are owned by accounts on {self.settings.homeserver.domain}; {owner} is not one.")
        await self.require_account(owner)
        if await Team.get_by_name(self.db, name):
            raise TeamExists(f"A team named {name!r} already exists. Choose another name.")
        now = self.clock.now_ms()
        trial = self.settings.trial
        team = Team(
            id="t" + secrets.token_hex(6),
            name=name,
            owner=owner,
            space_id=None,
            state=CREATING,
            plan="trial",
            created_at=now,
            trial_ends_at=now + trial.length * 1000,
            purge_after=now + (trial.length + trial.grace) * 1000,
        )
        try:
            async with self.db.acquire() as conn, conn.transaction():
                await team.insert(conn)
                await Member(team.id, owner, "owner", membership.INVITED, False, now).insert(conn)
        except Exception:
            if await Team.get_by_name(self.db, name):
                raise TeamExists(f"A team named {name!r} already exists. Choose another name.") from None
            raise
        log.info("Creating team %s (%s) for %s", team.id, name, owner)
        await self._build(team)
        return team

    async def finish_interrupted(self) -> int:
        """Finish teams whose creation a crash or restart interrupted; return how many."""
        teams = await Team.in_state(self.db, CREATING)
        for team in teams:
            log.info("Finishing the creation of team %s (%s)", team.id, team.name)
            await self._build(team)
        return len(teams)

    async def _build(self, team: Team) -> None:
        s = self.settings
        if team.space_id is None:
            space_id = await spaces.create_space(
                self.bot, name=team.name, owner=team.owner, levels=s.bridge.power_levels,
                room_version=s.bridge.room_version, retention_ms=self.retention_ms(team)
            )
            await team.set_space(self.db, space_id)
        existing = {room.name for room in await TeamRoom.of_team(self.db, team.id, kind=GROUP)}
        for name in s.bridge.default_rooms:
            if name not in existing:
                await self.add_group_room(team, name)
        await self.invite_everywhere(team, team.owner)
        await team.set_state(self.db, ACTIVE)
        log.info("Team %s is ready: space %s", team.id, team.space_id)

    async def add_group_room(self, team: Team, name: str) -> TeamRoom:
        """A room in the team's space with the team's settings, recorded before it is linked."""
        s = self.settings
        room_id = await spaces.create_group_room(
            self.bot,
            space_id=team.space_id,
            name=name,
            owner=team.owner,
            levels=s.bridge.power_levels,
            room_version=s.bridge.room_version,
            server_name=s.homeserver.domain,
            retention_ms=self.retention_ms(team),
        )
        room = TeamRoom(room_id, team.id, GROUP, name, self.clock.now_ms())
        await room.insert(self.db)
        await spaces.link_child(self.bot, team.space_id, room_id, s.homeserver.domain)
        return room

    # --- members -------------------------------------------------------------------

    async def require_account(self, user_id: str) -> None:
        """Refuse user IDs the homeserver does not know, before anything is changed."""
        try:
            await self.bot.get_profile(user_id)
        except MatrixRequestError as e:
            # Synapse answers 404 for unknown local users, sometimes without M_NOT_FOUND.
            if e.http_status == 404:
                raise UnknownUser(f"{user_id} does not exist on the homeserver.") from None
            raise UnknownUser(f"{user_id} could not be looked up ({e.http_status}).") from None

    async def require_manager(self, team: Team, actor: str | None) -> None:
        """Only the owner and admins manage a team; ``None`` is the operator."""
        if actor is not None and await self.role_of(team, actor) not in MANAGERS:
            raise NotAllowed(f"Only the owner or an admin of {team.name} may do that.")

    async def invite_everywhere(self, team: Team, user_id: str) -> None:
        await spaces.invite_once(self.bot, team.space_id, user_id)
        for room in await TeamRoom.of_team(self.db, team.id, kind=GROUP):
            await spaces.invite_once(self.bot, room.room_id, user_id)
