"""Third-party integrations: a per-team allowlist of bots and widget URL prefixes.

The config's lists apply to every team; each team adds its own. Outsiders in team rooms
who are not allowed bots are removed with a reason, widgets outside the allowed prefixes
are removed; both are recorded in the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from clutto_bridge.config import IntegrationSettings
from clutto_bridge.db.integrations import IntegrationStore
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.team import Team
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotFound
from clutto_bridge.domain.members import MemberChanges
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.ids import USER_ID
from clutto_bridge.policy.integrations import outsider_allowed, outsider_reason, widget_allowed

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


def classify(value: str) -> str:
    """A Matrix ID is a bot, an https:// URL a widget prefix; anything else is an error."""
    if USER_ID.fullmatch(value):
        return BOT
    if value.startswith("https://") and len(value) > len("https://"):
        return WIDGET
    raise InvalidInput(f"{value!r} is neither a bot's Matrix ID (@bot:server) nor an https:// widget URL prefix.")


@dataclass(kw_only=True, eq=False, repr=False)
class IntegrationService:
    store: IntegrationStore
    teams: TeamService
    members: MemberStore
    homeserver: Homeserver
    audit: AuditLog
    config: IntegrationSettings
    # MemberService's: a member's late join is judged after a removal in progress, not during it.
    changes: MemberChanges = field(default_factory=MemberChanges)

    async def allowlist(self, team: Team) -> Allowlist:
        rows = await self.store.of_team(team.id)
        config = self.config
        return Allowlist(
            [value for kind, value in rows if kind == BOT],
            [value for kind, value in rows if kind == WIDGET],
            config.bots,
            config.widget_url_prefixes,
        )

    async def allow(self, team: Team, value: str, *, actor: str | None) -> str:
        """Put a bot or widget prefix on the team's list; a bot is invited to the space and the
        group rooms. Only the bot may invite in team rooms (``spaces.GATE_LEVEL``), so this is
        how a bot comes in; allowing it again invites it again (to rooms made since)."""
        await self.teams.require_manager(team, actor)
        value = value.strip()
        kind = classify(value)
        current = await self.allowlist(team)
        listed = value in (current.team_bots if kind == BOT else current.team_widgets)
        if listed and kind == WIDGET:
            raise Conflict(f"{value} is already allowed in {team.name}.")
        if kind == BOT:
            await self.teams.require_account(value)  # it will be invited: refuse an unknown ID first
        if not listed:
            await self.store.add(team.id, kind, value)
            await self.audit.record(team, actor, AuditAction.INTEGRATION_ALLOWED, value, kind=kind)
        if kind == BOT:
            await self.teams.invite_everywhere(team, value)
        return kind

    async def deny(self, team: Team, value: str, *, actor: str | None) -> str:
        """Take an entry off the team's list; a bot is removed from the team's rooms too."""
        await self.teams.require_manager(team, actor)
        kind = classify(value.strip())
        if not await self.store.remove(team.id, kind, value):
            raise NotFound(f"{value} is not on {team.name}'s own list (the operator's defaults cannot be denied here).")
        await self.audit.record(team, actor, AuditAction.INTEGRATION_DENIED, value, kind=kind)
        if kind == BOT and value not in self.config.bots:
            reason = f"{value} is no longer an allowed integration of the team {team.name}"
            for room_id in await self.teams.room_ids(team):
                await self._remove_outsider(team, room_id, value, reason, actor=actor)
        return kind

    # --- enforcement ---------------------------------------------------------------

    async def check_membership(self, team: Team, room_id: str, user_id: str, membership: str, sender: str) -> bool:
        """Remove an outsider who was invited to or joined a team room; True if removed."""
        if membership not in ("invite", "join") or user_id == self.homeserver.bot_mxid:
            return False
        async with self.changes.of(team.id, user_id):
            return await self._check_membership(team, room_id, user_id, sender)

    async def _check_membership(self, team: Team, room_id: str, user_id: str, sender: str) -> bool:
        # Under the member's lock a removal has finished: a late join of a room it already took
        # them out of finds nobody to kick, and a removed member still here came back after it.
        member = await self.members.get(team.id, user_id)
        if member and member.current:
            return False
        if outsider_allowed(user_id, (await self.allowlist(team)).bots):
            return False
        return await self._remove_outsider(
            team, room_id, user_id, outsider_reason(team.name, user_id, member is not None), actor=sender
        )

    async def _remove_outsider(self, team: Team, room_id: str, user_id: str, reason: str, *, actor: str | None) -> bool:
        if not await self.homeserver.kick(room_id, user_id, reason):
            return False
        log.info("Removed %s from %s: %s", user_id, room_id, reason)
        await self.audit.record(team, actor, AuditAction.INTEGRATION_REMOVED, user_id, room_id=room_id)
        return True

    async def check_widget(
        self, team: Team, room_id: str, event_type: str, state_key: str, content: dict, sender: str
    ) -> bool:
        """Remove a widget whose URL is not allowed; True if removed."""
        if not content or widget_allowed(content.get("url"), (await self.allowlist(team)).widgets):
            return False
        await self.homeserver.set_state(room_id, event_type, {}, state_key=state_key)
        log.info("Removed widget %s in %s: URL not allowed", state_key, room_id)
        await self.audit.record(
            team, sender, AuditAction.WIDGET_REMOVED, room_id, widget=state_key, url=str(content.get("url"))[:500]
        )
        return True
