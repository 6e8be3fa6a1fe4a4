"""A team's details (name, topic, avatar) and deleting a team.

Deleting is owner-only and needs the team's name as confirmation. It shuts down the
space and every team room through the Synapse admin API (delete with purge), then
removes the bridge's rows; the audit record that it happened stays. The team is marked
``deleting`` first, so a deletion interrupted by a restart is finished on the next start.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from clutto_bridge.db.job import JobKind, JobStore
from clutto_bridge.db.team import RoomStore, Team, TeamState, TeamStore
from clutto_bridge.domain import validation
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import InvalidInput, NotAllowed, TeamExists
from clutto_bridge.domain.service import TeamService
from clutto_bridge.domain.webhooks import WebhookEvents
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.details")

_MXC = re.compile(r"mxc://[A-Za-z0-9.\-:\[\]]+/[A-Za-z0-9_\-]+")


@dataclass(kw_only=True, eq=False, repr=False)
class TeamDetails:
    teams: TeamService
    store: TeamStore
    rooms: RoomStore
    jobs: JobStore
    homeserver: Homeserver
    admin: SynapseAdmin
    audit: AuditLog
    name_max_length: int
    events: WebhookEvents | None = None

    async def update(
        self,
        team: Team,
        *,
        actor: str | None,
        name: str | None = None,
        topic: str | None = None,
        avatar_url: str | None = None,
    ) -> Team:
        """Change any of name, topic and avatar; every value is checked before anything changes."""
        await self.teams.require_manager(team, actor)
        if name is not None:
            name = validation.team_name(name, self.name_max_length)
            other = await self.store.get_by_name(name)
            if other and other.id != team.id:
                raise TeamExists(f"A team named {other.name!r} already exists. Choose another name.")
        if topic is not None:
            topic = _topic(topic)
        if avatar_url is not None and not _MXC.fullmatch(avatar_url):
            raise InvalidInput(f"{avatar_url!r} is not an mxc:// media URL; upload the image first.")
        hs = self.homeserver
        if name is not None and name != team.name:
            old = team.name
            await self.store.rename(team, name)
            await hs.set_state(team.space, "m.room.name", {"name": name})
            await self.audit.record(team, actor, AuditAction.TEAM_RENAMED, team.id, old=old, new=name)
        if topic is not None:
            await hs.set_state(team.space, "m.room.topic", {"topic": topic})
            await self.audit.record(team, actor, AuditAction.TEAM_TOPIC_SET, team.id)
        if avatar_url is not None:
            await hs.set_state(team.space, "m.room.avatar", {"url": avatar_url})
            await self.audit.record(team, actor, AuditAction.TEAM_AVATAR_SET, team.id, url=avatar_url)
        return team

    async def delete(self, team: Team, confirm: str | None, *, actor: str | None) -> None:
        if actor is not None and actor != team.owner:
            raise NotAllowed(f"Only the owner of {team.name} may delete it.")
        if confirm is None or Team.name_key(confirm) != Team.name_key(team.name):
            raise InvalidInput(f"To delete {team.name} and everything in it, confirm with the team's exact name.")
        if not await self.admin.is_admin():
            raise NotAllowed("Deleting a team needs the homeserver admin API; the bot is not a homeserver admin.")
        await self.store.set_state(team, TeamState.DELETING)
        await self.audit.record(team, actor, AuditAction.TEAM_DELETE_STARTED, team.id, name=team.name)
        await self.shut_down(team, actor)

    async def finish_interrupted(self) -> int:
        """Finish deletions a stop interrupted; a trial purge is left to its own job, which
        still has accounts to erase before the rows go."""
        teams = [
            team
            for team in await self.store.in_state(TeamState.DELETING)
            if not await self.jobs.active(JobKind.PURGE, team.id)
        ]
        for team in teams:
            log.info("Finishing the deletion of team %s (%s)", team.id, team.name)
            await self.shut_down(team, None)
        return len(teams)

    async def shut_down(
        self,
        team: Team,
        actor: str | None,
        *,
        message: str | None = None,
        action: AuditAction = AuditAction.TEAM_DELETED,
        **detail: Any,
    ) -> None:
        """Delete the space and every room with purge, then the team's rows (audit stays)."""
        rooms = [r.room_id for r in await self.rooms.of_team(team.id, include_archived=True)]
        message = message or f"The team {team.name} was deleted by its owner."
        for room_id in rooms + ([team.space_id] if team.space_id else []):
            try:
                await self.admin.delete_room(room_id, message)
            except AdminUnavailable as e:
                raise NotAllowed(f"Deleting a team needs the homeserver admin API: {e}.") from None
            except MatrixRequestError as e:
                if e.http_status not in (400, 404):  # already gone
                    raise
            await self.rooms.delete(room_id)
        await self.store.delete(team.id)
        await self.audit.record(team, actor, action, team.id, name=team.name, rooms=len(rooms) + 1, **detail)
        if self.events is not None:
            await self.events.emit(
                "team.purged", team.id, {"name": team.name, "reason": action, "rooms": len(rooms) + 1}
            )
        log.info("Deleted team %s (%s) and %d rooms", team.id, team.name, len(rooms) + 1)


def _topic(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("The topic must be text.")
    topic = raw.strip()
    if len(topic) > 500:
        raise InvalidInput("The topic has at most 500 characters.")
    if any(unicodedata.category(c).startswith("C") and c != "\n" for c in topic):
        raise InvalidInput("The topic must not contain control characters.")
    return topic
