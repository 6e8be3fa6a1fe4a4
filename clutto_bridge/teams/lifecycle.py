"""The trial lifecycle: warn the owner before the purge, export first if asked, then purge.

A team on the ``trial`` plan is purged when its grace period ends (``purge_after``):
every room deleted with purge through the admin API, the media its rooms referenced
removed, the accounts Clutto created for it that belong to no other team deactivated
with erasure, and its rows deleted except the audit record. A legal hold blocks the purge;
a team whose export setting asks for it is exported first.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from clutto_bridge.db.job import DONE
from clutto_bridge.db.person import forget_person
from clutto_bridge.db.team import ACTIVE, Team, TeamRoom
from clutto_bridge.jobs.export import EXPORT
from clutto_bridge.jobs.runner import JobContext, JobRunner
from clutto_bridge.policy.trial import PLANS, due_warnings, purge_due
from clutto_bridge.teams.errors import InvalidInput, NotAllowed
from clutto_bridge.teams.notices import NoticeService
from clutto_bridge.teams.retention import RetentionService
from clutto_bridge.teams.settings import DELETING, TeamSettings

log = logging.getLogger("clutto.lifecycle")

PURGE = "team_purge"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


class TrialLifecycle:
    def __init__(
        self, retention: RetentionService, team_settings: TeamSettings, runner: JobRunner, notices: NoticeService
    ) -> None:
        self.retention = retention
        self.team_settings = team_settings
        self.members = retention.members
        self.runner = runner
        self.notices = notices  # warnings are service notices: they reach the owner whatever the marketing choice
        self.db = retention.db
        self.clock = retention.clock
        self.settings = retention.settings

    async def set_plan(self, team: Team, plan: str, *, actor: str | None) -> None:
        if actor is not None:
            raise NotAllowed("The plan is set by the operator.")
        if plan not in PLANS:
            raise InvalidInput(f"Unknown plan {plan!r}; plans are {', '.join(PLANS)}.")
        await self.db.execute("UPDATE team SET plan=$1 WHERE id=$2", plan, team.id)
        await self.members.record(team, actor, "plan_set", team.id, old=team.plan, new=plan)
        team.plan = plan

    async def set_export_before_purge(self, team: Team, enabled: bool, *, actor: str | None) -> None:
        await self.members.teams.require_manager(team, actor)
        await self.db.execute("UPDATE team SET export_before_purge=$1 WHERE id=$2", enabled, team.id)
        await self.members.record(team, actor, "export_setting", team.id, before_purge=enabled)
        team.export_before_purge = enabled

    async def request_export(self, team: Team, *, actor: str | None):
        await self.members.teams.require_manager(team, actor)
        return await self.runner.enqueue(EXPORT, team.id, {"requested_by": actor})

    async def last_export(self, team: Team) -> dict | None:
        row = await self.db.fetchrow(
            "SELECT id, progress FROM job WHERE kind=$1 AND team_id=$2 AND state=$3 ORDER BY id DESC LIMIT 1",
            EXPORT, team.id, DONE,
        )
        return dict(row) if row else None

    async def check(self) -> None:
        """Warn owners whose trial purge approaches; start the purge of teams past it."""
        now = self.clock.now_ms()
        for team in await Team.in_state(self.db, ACTIVE):
            sent = {w for w in team.warned_at.split(",") if w}
            due = due_warnings(now, team.plan, team.purge_after, self.settings.trial.warnings, sent)
            if due:
                await self._warn(team, due[-1])
                await self.db.execute("UPDATE team SET warned_at=$1 WHERE id=$2", ",".join(sorted(sent | set(due))), team.id)
            if not purge_due(now, team.plan, team.purge_after):
                continue
            if await self.retention.holds(team):
                await self._note_once(team, "purge_blocked_by_hold")
                continue
            if team.export_before_purge and await self.last_export(team) is None:
                await self.runner.enqueue(EXPORT, team.id, {"requested_by": None, "reason": "before purge"})
                continue
            await self.runner.enqueue(PURGE, team.id, {})

    async def _note_once(self, team: Team, action: str) -> None:
        entries = await self.members.audit.for_team(team.id, action)
        if not entries:
            await self.members.record(team, None, action, team.id)

    async def _warn(self, team: Team, before: str) -> None:
        export = " An export of the team's data is made first." if team.export_before_purge else ""
        text = (
            f"Your team **{team.name}** is on a trial that ended on {_day(team.trial_ends_at)}. "
            f"On {_day(team.purge_after)} (in {before}) the team and all its data will be purged "
            f"irreversibly unless its plan is upgraded.{export}"
        )
        await self.members.teams.bot.send_notice(
            await self.notices.direct_room(team.owner), text=text.replace("**", ""), html=text.replace("**", "<b>", 1).replace("**", "</b>", 1)
        )
        await self.members.record(team, None, "trial_warning", team.owner, before=before)

    # --- the purge job -----------------------------------------------------------------

    async def purge(self, ctx: JobContext) -> None:
        team = await Team.get(self.db, ctx.job.team_id)
        if team is None:
            await ctx.checkpoint(skipped="team is gone")
            return
        if await self.retention.holds(team):
            await ctx.checkpoint(skipped="legal hold")
            return
        admin = self.members.admin
        if ctx.progress.get("step", 0) < 1:
            await team.set_state(self.db, DELETING)
            media = 0
            for room in await TeamRoom.of_team(self.db, team.id, include_archived=True):
                for row in await self.db.fetch("SELECT DISTINCT mxc FROM room_media WHERE room_id=$1", room.room_id):
                    media += await admin.delete_media(row["mxc"])
                await self.db.execute("DELETE FROM room_media WHERE room_id=$1", room.room_id)
            await ctx.checkpoint(step=1, media_deleted=media)
        if ctx.progress["step"] < 2:
            erased = []
            for row in await self.db.fetch(
                "SELECT user_id FROM team_member m WHERE team_id=$1 AND created_by_bridge AND NOT EXISTS "
                "(SELECT 1 FROM team_member o WHERE o.user_id=m.user_id AND o.team_id<>m.team_id "
                "AND o.membership IN ('invited','joined'))",
                team.id,
            ):
                await admin.deactivate(row["user_id"], erase=True)
                await forget_person(self.db, row["user_id"])
                erased.append(row["user_id"])
            await ctx.checkpoint(step=2, accounts_erased=erased)
        await self.team_settings.shut_down(
            team, None, message=f"The trial of the team {team.name} ended; its data was purged.", action="team_purged",
            media_deleted=ctx.progress["media_deleted"], accounts_erased=ctx.progress["accounts_erased"],
        )
        await ctx.checkpoint(step=3)
