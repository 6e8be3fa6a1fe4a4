"""The purge of a team whose trial and grace period ended (P10).

Every room deleted with purge through the admin API, the media its rooms referenced
removed, the accounts Clutto created for it that belong to no other team deactivated
with erasure, and its rows deleted except the audit record. Each step is checkpointed,
so a purge interrupted by a crash continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.person import PersonStore
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import RoomStore, TeamState, TeamStore
from clutto_bridge.domain.details import TeamDetails
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.admin import SynapseAdmin
from clutto_bridge.policy.audit_actions import AuditAction

MEDIA, ACCOUNTS, ROOMS = 1, 2, 3  # steps done


@dataclass(kw_only=True, eq=False, repr=False)
class TeamPurge:
    teams: TeamStore
    rooms: RoomStore
    members: MemberStore
    references: ReferenceStore
    persons: PersonStore
    retention: RetentionService
    details: TeamDetails
    admin: SynapseAdmin

    async def __call__(self, ctx: JobContext) -> None:
        team = await self.teams.get(ctx.job.team_id)
        if team is None:
            await ctx.checkpoint(skipped="team is gone")
            return
        if await self.retention.holds(team):
            await ctx.checkpoint(skipped="legal hold")
            return
        if ctx.progress.get("step", 0) < MEDIA:
            await self.teams.set_state(team, TeamState.DELETING)
            media = 0
            for room in await self.rooms.of_team(team.id, include_archived=True):
                for mxc in await self.references.media_of_room(room.room_id):
                    media += await self.admin.delete_media(mxc)
                await self.references.forget_room_media(room.room_id)
                await self.retention.forget_index(room.room_id)
            await ctx.checkpoint(step=MEDIA, media_deleted=media)
        if ctx.progress["step"] < ACCOUNTS:
            erased = []
            for user_id in await self.members.only_here_and_created(team.id):
                await self.admin.deactivate(user_id, erase=True)
                await self.persons.forget(user_id)
                erased.append(user_id)
            await ctx.checkpoint(step=ACCOUNTS, accounts_erased=erased)
        await self.details.shut_down(
            team,
            None,
            message=f"The trial of the team {team.name} ended; its data was purged.",
            action=AuditAction.TEAM_PURGED,
            media_deleted=ctx.progress["media_deleted"],
            accounts_erased=ctx.progress["accounts_erased"],
        )
        await ctx.checkpoint(step=ROOMS)
