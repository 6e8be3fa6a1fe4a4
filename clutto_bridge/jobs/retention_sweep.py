"""The retention sweep of one team: redact, then purge, then delete orphaned media.

Per room, the timeline is read oldest first in pages. Events before the cutoff are
redacted (clients and federated servers drop their content), with the edits and
reactions that point at them, and a purge plan is drawn up as the pages pass; then the
history before each planned cut is purged through the Synapse admin API, one bounded
slice at a time; then media that only removed events referenced is deleted. Progress
(room, page token, plan, cuts done) is checkpointed after every page, and the cutoff is
fixed when the sweep starts, so a sweep resumed after a crash finishes the same work and
never reaches into the window.
"""

from __future__ import annotations

import asyncio
import logging

from clutto_bridge.db.team import Team
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix import history
from clutto_bridge.matrix.admin import AdminUnavailable
from clutto_bridge.policy.retention import PurgePlan, removable
from clutto_bridge.teams.retention import RetentionService

log = logging.getLogger("clutto.sweep")

REASON = "Removed by the team's retention policy"
# Synapse orders a room's writes itself; a few concurrent requests hide the round trips.
REDACTIONS_IN_FLIGHT = 8


class RetentionSweep:
    def __init__(self, retention: RetentionService) -> None:
        self.retention = retention
        self.db = retention.db
        self.admin = retention.members.admin
        self.limiter = RateLimiter(retention.settings.jobs.homeserver_rate)

    @property
    def bot(self):
        return self.retention.teams.bot

    async def __call__(self, ctx: JobContext) -> None:
        team = await Team.get(self.db, ctx.job.team_id)
        if team is None or team.state != "active":
            await ctx.checkpoint(skipped="team is gone")
            return
        if "cutoff" not in ctx.progress:
            rooms = [r.room_id for r in await self.retention.rooms_to_sweep(team)]
            await ctx.checkpoint(
                cutoff=self.retention.cutoff(team), rooms=rooms, room_index=0, redacted=0, purged_rooms=0,
                media_deleted=0, held=[], redaction_only=not self.retention.admin_available,
            )
        rooms = ctx.progress["rooms"]
        while ctx.progress["room_index"] < len(rooms):
            room_id = rooms[ctx.progress["room_index"]]
            if await self.retention.is_held(team, room_id):
                ctx.progress["held"] = sorted({*ctx.progress["held"], room_id})
            else:
                await self._sweep_room(ctx, team, room_id)
            await ctx.checkpoint(
                room_index=ctx.progress["room_index"] + 1, token=None, plan=None, cuts_done=None, scanned=False
            )
        await self.retention.members.record(
            team, ctx.job.payload.get("requested_by"), "retention_sweep", team.id,
            cutoff=ctx.progress["cutoff"], redacted=ctx.progress["redacted"], rooms=len(rooms),
            held=len(ctx.progress["held"]), media_deleted=ctx.progress["media_deleted"],
            redaction_only=ctx.progress["redaction_only"],
        )

    async def _sweep_room(self, ctx: JobContext, team: Team, room_id: str) -> None:
        cutoff = ctx.progress["cutoff"]
        batch = self.retention.settings.retention.batch_size
        if ctx.progress.get("cuts_done") is None:
            redacted = await self._redact_old(ctx, room_id, cutoff, batch)
            if redacted:
                await self.retention.members.record(team, None, "retention_redacted", room_id, events=redacted, cutoff=cutoff)
        if not ctx.progress["redaction_only"]:
            await self._purge(ctx, team, room_id)
            await self._delete_orphaned_media(ctx, room_id, cutoff)

    async def _redact_old(self, ctx: JobContext, room_id: str, cutoff: int, batch: int) -> int:
        """Redact page by page. Each page's victims are checkpointed before they are redacted,
        so a resumed sweep redacts (again, harmlessly) and counts exactly that page."""
        total = 0
        slice_ms = self.retention.settings.retention.purge_slice * 1000
        plan = PurgePlan(cutoff, slice_ms, **(ctx.progress.get("plan") or {}))
        while True:
            if ctx.progress.get("pending") is None:
                if ctx.progress.get("scanned"):
                    break
                events, next_token = await history.page_forward(self.bot, room_id, ctx.progress.get("token"), batch)
                for event in events:
                    plan.see(event)
                doomed = [e["event_id"] for e in events if removable(e, cutoff)]
                doomed += await self.retention.relations_of(room_id, doomed, cutoff)
                await ctx.checkpoint(pending=doomed, pending_next=next_token, plan=plan.state())
            pending = ctx.progress["pending"]
            await self._redact_all(room_id, pending)
            total += len(pending)
            next_token = ctx.progress["pending_next"]
            await ctx.checkpoint(
                token=next_token, pending=None, pending_next=None, scanned=next_token is None,
                redacted=ctx.progress["redacted"] + len(pending),
            )
        await ctx.checkpoint(cuts_done=0, scanned=False)
        return total

    async def _redact_all(self, room_id: str, event_ids: list[str]) -> None:
        """Redact a page's events, a few requests in flight at once, within the rate limit."""
        slots = asyncio.Semaphore(REDACTIONS_IN_FLIGHT)

        async def one(event_id: str) -> None:
            async with slots:
                await self.limiter.acquire()
                await history.redact(self.bot, room_id, event_id, REASON)

        await asyncio.gather(*(one(event_id) for event_id in event_ids))

    async def _purge(self, ctx: JobContext, team: Team, room_id: str) -> None:
        """Purge before each planned cut in turn; each cut bounds one purge's work."""
        points = (ctx.progress.get("plan") or {}).get("points", [])
        purged_any = False
        for index in range(ctx.progress.get("cuts_done") or 0, len(points)):
            await self.limiter.acquire()
            try:
                purged_any |= await self.admin.purge_history(room_id, points[index])
            except AdminUnavailable as e:
                log.warning("Purging %s is not possible (%s); the sweep redacts only", room_id, e)
                await ctx.checkpoint(redaction_only=True)
                return
            await ctx.checkpoint(cuts_done=index + 1)
        if purged_any:
            await ctx.checkpoint(purged_rooms=ctx.progress["purged_rooms"] + 1)
            await self.retention.members.record(team, None, "retention_purged", room_id, cuts=len(points))

    async def _delete_orphaned_media(self, ctx: JobContext, room_id: str, cutoff: int) -> None:
        """Delete media whose every known reference is an event this sweep removed."""
        rows = await self.db.fetch(
            "SELECT DISTINCT mxc FROM room_media WHERE room_id=$1 AND ts < $2", room_id, cutoff
        )
        deleted = 0
        for row in rows:
            mxc = row["mxc"]
            still_used = await self.db.fetchval(
                "SELECT COUNT(*) FROM room_media WHERE mxc=$1 AND NOT (room_id=$2 AND ts < $3)", mxc, room_id, cutoff
            )
            if still_used:
                continue
            await self.limiter.acquire()
            if await self.admin.delete_media(mxc):
                deleted += 1
            await self.db.execute("DELETE FROM room_media WHERE mxc=$1", mxc)
        if deleted:
            await ctx.checkpoint(media_deleted=ctx.progress["media_deleted"] + deleted)
