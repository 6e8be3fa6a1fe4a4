"""The retention sweep of one team: redact, then purge, then delete orphaned media.

Per room, the timeline is read oldest first in pages. Events before the cutoff are
redacted (clients and federated servers drop their content), with the edits and
reactions that point at them, and a purge plan is drawn up as the pages pass; then the
history before each planned cut is purged through the Synapse admin API, one bounded
slice at a time; then media that only removed events referenced is deleted. Progress is
a ``SweepProgress`` checkpointed after every page, and the cutoff is fixed when the sweep
starts, so a sweep resumed after a crash finishes the same work and never reaches into
the window.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from clutto_bridge.config import RetentionSettings
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import Team, TeamState, TeamStore
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.retention import PurgePlan, media_urls, removable
from clutto_bridge.teams.audit import AuditLog
from clutto_bridge.teams.retention import RetentionService

log = logging.getLogger("clutto.sweep")

REASON = "Removed by the team's retention policy"
# Synapse orders a room's writes itself; a few concurrent requests hide the round trips.
REDACTIONS_IN_FLIGHT = 8


class Phase(StrEnum):
    SCAN = "scan"  # reading the timeline and redacting page by page
    PURGE = "purge"  # purging before the planned cuts, then deleting orphaned media


@dataclass
class RoomSweep:
    """How far the sweep of the current room got."""

    phase: Phase = Phase.SCAN
    token: str | None = None  # where the scan continues
    scanned: bool = False  # the scan reached the end of the timeline
    pending: list[str] | None = None  # the current page's victims, saved before they are redacted
    pending_next: str | None = None  # the token after the pending page
    plan: dict[str, Any] | None = None  # PurgePlan.state()
    cuts_done: int = 0


@dataclass
class SweepProgress:
    cutoff: int
    rooms: list[str]
    redaction_only: bool
    room_index: int = 0
    redacted: int = 0
    purged_rooms: int = 0
    media_deleted: int = 0
    held: list[str] = field(default_factory=list)
    room: RoomSweep = field(default_factory=RoomSweep)

    @classmethod
    def load(cls, saved: dict[str, Any]) -> SweepProgress:
        room = saved.get("room")
        if room is None:  # a checkpoint written before progress was typed (flat keys)
            room = {
                "phase": Phase.SCAN if saved.get("cuts_done") is None else Phase.PURGE,
                **{k: saved.get(k) for k in ("token", "pending", "pending_next", "plan")},
                "scanned": bool(saved.get("scanned")), "cuts_done": saved.get("cuts_done") or 0,
            }
        fields = {k: saved[k] for k in cls.__dataclass_fields__ if k in saved and k != "room"}
        return cls(**fields, room=RoomSweep(**{**room, "phase": Phase(room["phase"])}))


class RetentionSweep:
    def __init__(
        self, retention: RetentionService, teams: TeamStore, references: ReferenceStore, homeserver: Homeserver,
        admin: SynapseAdmin, audit: AuditLog, settings: RetentionSettings, homeserver_rate: int,
    ) -> None:
        self.retention = retention
        self.teams = teams
        self.references = references
        self.homeserver = homeserver
        self.admin = admin
        self.audit = audit
        self.settings = settings
        self.limiter = RateLimiter(homeserver_rate)

    async def __call__(self, ctx: JobContext) -> None:
        team = await self.teams.get(ctx.job.team_id)
        if team is None or team.state != TeamState.ACTIVE:
            await ctx.checkpoint(skipped="team is gone")
            return
        if "cutoff" in ctx.progress:
            p = SweepProgress.load(ctx.progress)
        else:
            rooms = [r.room_id for r in await self.retention.rooms_to_sweep(team)]
            p = SweepProgress(self.retention.cutoff(team), rooms, redaction_only=not self.retention.admin_available)
            await self._save(ctx, p)
        while p.room_index < len(p.rooms):
            room_id = p.rooms[p.room_index]
            if await self.retention.is_held(team, room_id):
                p.held = sorted({*p.held, room_id})
            else:
                await self._sweep_room(ctx, p, team, room_id)
            p.room_index += 1
            p.room = RoomSweep()
            await self._save(ctx, p)
        await self.audit.record(
            team, ctx.job.payload.get("requested_by"), "retention_sweep", team.id,
            cutoff=p.cutoff, redacted=p.redacted, rooms=len(p.rooms), held=len(p.held),
            media_deleted=p.media_deleted, redaction_only=p.redaction_only,
        )

    @staticmethod
    async def _save(ctx: JobContext, p: SweepProgress) -> None:
        await ctx.checkpoint(**asdict(p))

    async def _sweep_room(self, ctx: JobContext, p: SweepProgress, team: Team, room_id: str) -> None:
        if p.room.phase == Phase.SCAN:
            redacted = await self._redact_old(ctx, p, room_id)
            if redacted:
                await self.audit.record(team, None, "retention_redacted", room_id, events=redacted, cutoff=p.cutoff)
        if not p.redaction_only:
            await self._purge(ctx, p, team, room_id)
            await self._delete_orphaned_media(ctx, p, room_id)

    async def _redact_old(self, ctx: JobContext, p: SweepProgress, room_id: str) -> int:
        """Redact page by page. Each page's victims are checkpointed before they are redacted,
        so a resumed sweep redacts (again, harmlessly) and counts exactly that page."""
        total = 0
        r = p.room
        plan = PurgePlan(p.cutoff, self.settings.purge_slice * 1000, **(r.plan or {}))
        while True:
            if r.pending is None:
                if r.scanned:
                    break
                events, next_token = await self.homeserver.page_forward(room_id, r.token, self.settings.batch_size)
                for event in events:
                    plan.see(event)
                expired = [e for e in events if removable(e, p.cutoff)]
                await self._note_media(room_id, expired)
                doomed = [e["event_id"] for e in expired]
                doomed += await self.retention.relations_of(room_id, doomed, p.cutoff)
                r.pending, r.pending_next, r.plan = doomed, next_token, plan.state()
                await self._save(ctx, p)
            await self._redact_all(room_id, r.pending)
            total += len(r.pending)
            p.redacted += len(r.pending)
            r.token, r.scanned = r.pending_next, r.pending_next is None
            r.pending = r.pending_next = None
            await self._save(ctx, p)
        r.phase = Phase.PURGE
        await self._save(ctx, p)
        return total

    async def _note_media(self, room_id: str, events: list[dict[str, Any]]) -> None:
        """Note the media of expired events as the scan reads them: the homeserver may not have
        delivered them to the bridge yet, and media of a removed event must go with it."""
        for event in events:
            for mxc in media_urls(event.get("content") or {}):
                await self.references.add_media(room_id, event["event_id"], mxc, event.get("origin_server_ts", 0))

    async def _redact_all(self, room_id: str, event_ids: list[str]) -> None:
        """Redact a page's events, a few requests in flight at once, within the rate limit."""
        slots = asyncio.Semaphore(REDACTIONS_IN_FLIGHT)

        async def one(event_id: str) -> None:
            async with slots:
                await self.limiter.acquire()
                await self.homeserver.redact(room_id, event_id, REASON)

        await asyncio.gather(*(one(event_id) for event_id in event_ids))

    async def _purge(self, ctx: JobContext, p: SweepProgress, team: Team, room_id: str) -> None:
        """Purge before each planned cut in turn; each cut bounds one purge's work."""
        points = (p.room.plan or {}).get("points", [])
        purged_any = False
        for index in range(p.room.cuts_done, len(points)):
            await self.limiter.acquire()
            try:
                purged_any |= await self.admin.purge_history(room_id, points[index])
            except AdminUnavailable as e:
                log.warning("Purging %s is not possible (%s); the sweep redacts only", room_id, e)
                p.redaction_only = True
                await self._save(ctx, p)
                return
            p.room.cuts_done = index + 1
            await self._save(ctx, p)
        if purged_any:
            p.purged_rooms += 1
            await self._save(ctx, p)
            await self.audit.record(team, None, "retention_purged", room_id, cuts=len(points))

    async def _delete_orphaned_media(self, ctx: JobContext, p: SweepProgress, room_id: str) -> None:
        """Delete media whose every known reference is an event this sweep removed."""
        deleted = 0
        for mxc in await self.references.media_before(room_id, p.cutoff):
            if await self.references.used_outside(mxc, room_id, p.cutoff):
                continue
            await self.limiter.acquire()
            if await self.admin.delete_media(mxc):
                deleted += 1
            await self.references.forget_media(mxc)
        if deleted:
            p.media_deleted += deleted
            await self._save(ctx, p)
