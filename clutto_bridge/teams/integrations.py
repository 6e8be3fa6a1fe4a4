"""Third-party integrations: a per-team allowlist of bots and widget URL prefixes.

The config's lists apply to every team; each team adds its own. Outsiders in team rooms
who are not allowed bots are removed with a reason, widgets outside the allowed prefixes
are removed; both are recorded in the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mautrix.errors import MatrixRequestError
from mautrix.types import EventType

from clutto_bridge.db.member import Member
from clutto_bridge.db.team import Team, TeamRoom
from clutto_bridge.matrix.ids import USER_ID
from clutto_bridge.policy.integrations import outsider_allowed, widget_allowed
from clutto_bridge.teams.errors import Conflict, InvalidInput, NotFound
from clutto_bridge.teams.members import ACTIVE, MemberService

log = logging.getLogger("clutto.integrations")

BOT = "bot"
WIDGET = "widget"


@dataclass
class Allowlist:
    team_bots: list[str]
    team_widgets: list[str]
    global_bots: tuple[str, ...]
    global_widgets: tuple[str, ...]

    @property
    def bots(self) -> set[str]:
        return set(self.team_bots) | set(self.global_bots)

    @property
    def widgets(self) -> list[str]:
        return [*self.global_widgets, *self.team_widgets]

    def to_json(self) -> dict:
        return {
            "bots": self.team_bots,
            "widget_url_prefixes": self.team_widgets,
            "defaults": {"bots": list(self.global_bots), "widget_url_prefixes": list(self.global_widgets)},
        }


def classify(value: str) -> str:
    """A Matrix ID is a bot, an https:// URL a widget prefix; anything else is an error."""
    if USER_ID.fullmatch(value):
        return BOT
    if value.startswith("https://") and len(value) > len("https://"):
        return WIDGET
    raise InvalidInput(f"{value!r} is neither a bot's Matrix ID (@bot:server) nor an https:// widget URL prefix.")


class IntegrationService:
    def __init__(self, members: MemberService) -> None:
        self.members = members
        self.teams = members.teams
        self.db = members.db
        self.settings = members.settings

    async def allowlist(self, team: Team) -> Allowlist:
        rows = await self.db.fetch(
            "SELECT kind, value FROM integration_allow WHERE team_id=$1 ORDER BY kind, value", team.id
        )
        config = self.settings.integrations
        return Allowlist(
            [r["value"] for r in rows if r["kind"] == BOT],
            [r["value"] for r in rows if r["kind"] == WIDGET],
            config.bots,
            config.widget_url_prefixes,
        )

    async def allow(self, team: Team, value: str, *, actor: str | None) -> str:
        await self.teams.require_manager(team, actor)
        kind = classify(value.strip())
        current = await self.allowlist(team)
        if value in (current.team_bots if kind == BOT else current.team_widgets):
            raise Conflict(f"{value} is already allowed in {team.name}.")
        await self.db.execute(
            "INSERT INTO integration_allow (team_id, kind, value) VALUES ($1, $2, $3)", team.id, kind, value.strip()
        )
        await self.members.record(team, actor, "integration_allowed", value, kind=kind)
        return kind

    async def deny(self, team: Team, value: str, *, actor: str | None) -> str:
        """Take an entry off the team's list; a bot is removed from the team's rooms too."""
        await self.teams.require_manager(team, actor)
        kind = classify(value.strip())
        deleted = await self.db.fetchval(
            "SELECT COUNT(*) FROM integration_allow WHERE team_id=$1 AND kind=$2 AND value=$3", team.id, kind, value
        )
        if not deleted:
            raise NotFound(f"{value} is not on {team.name}'s own list (the operator's defaults cannot be denied here).")
        await self.db.execute(
            "DELETE FROM integration_allow WHERE team_id=$1 AND kind=$2 AND value=$3", team.id, kind, value
        )
        await self.members.record(team, actor, "integration_denied", value, kind=kind)
        if kind == BOT and value not in self.settings.integrations.bots:
            for room_id in await self._team_room_ids(team):
                await self._remove_outsider(team, room_id, value, actor=actor)
        return kind

    async def _team_room_ids(self, team: Team) -> list[str]:
        return [team.space_id] + [r.room_id for r in await TeamRoom.of_team(self.db, team.id)]

    # --- enforcement ---------------------------------------------------------------

    async def check_membership(self, team: Team, room_id: str, user_id: str, membership: str, sender: str) -> bool:
        """Remove an outsider who was invited to or joined a team room; True if removed."""
        if membership not in ("invite", "join") or user_id == self.teams.bot.mxid:
            return False
        member = await Member.get(self.db, team.id, user_id)
        if member and member.membership in ACTIVE:
            return False
        if outsider_allowed(user_id, (await self.allowlist(team)).bots):
            return False
        former = member is not None
        return await self._remove_outsider(team, room_id, user_id, actor=sender, former_member=former)

    async def _remove_outsider(
        self, team: Team, room_id: str, user_id: str, *, actor: str | None, former_member: bool = False
    ) -> bool:
        if former_member:
            reason = f"{user_id} is no longer a member of the team {team.name}"
        else:
            reason = f"{user_id} is not an allowed integration of the team {team.name}"
        try:
            await self.teams.bot.kick_user(room_id, user_id, reason=reason)
        except MatrixRequestError as e:
            log.debug("Removing %s from %s: %s", user_id, room_id, e)
            return False
        log.info("Removed %s from %s: not an allowed integration", user_id, room_id)
        await self.members.record(team, actor, "integration_removed", user_id, room_id=room_id)
        return True

    async def check_widget(self, team: Team, room_id: str, event_type: str, state_key: str, content: dict, sender: str) -> bool:
        """Remove a widget whose URL is not allowed; True if removed."""
        if not content or widget_allowed(content.get("url"), (await self.allowlist(team)).widgets):
            return False
        await self.teams.bot.send_state_event(
            room_id, EventType.find(event_type, EventType.Class.STATE), {}, state_key=state_key
        )
        log.info("Removed widget %s in %s: URL not allowed", state_key, room_id)
        await self.members.record(
            team, sender, "widget_removed", room_id, widget=state_key, url=str(content.get("url"))[:500]
        )
        return True
