"""The retention sweep of one team: per room, fill the index, redact, purge once, delete media.

The bridge indexes every team room event as it arrives (``db/timeline.py``), so a sweep
reads what expired from its own database instead of the room's whole history. Per room:

1. **fill**: where the stream may have missed events (the room was never read, or the
   bridge was down since), read the homeserver's history from where the last read ended,
   without redaction events, and place it in the index in the homeserver's order;
2. **head**: walk the index from the oldest row to the first event inside the window;
   the expired messages before it are what a purge removes (redacted first where the room's
   path says so; their edits and reactions inside the window are redacted too);
3. **tail**: expired messages after that point (imported history with old timestamps placed
   after newer messages) cannot be purged and are redacted, unless the mode is ``never``;
4. **purge**: one purge up to the first event inside the window (more only when the
   operator bounds purges with ``purge_slice``), then the index rows before it go, and media
   that only removed events referenced is deleted.

Progress is a ``SweepProgress`` checkpointed after every page, the cutoff is fixed when the
sweep starts, and each page's victims are saved before they are redacted, so a sweep
resumed after a crash finishes the same work and never reaches into the window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from clutto_bridge.config import RetentionSettings
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import Team, TeamState, TeamStore
from clutto_bridge.db.timeline import IndexedRoom, TimelineIndex
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.redaction_pace import RedactionPace
from clutto_bridge.policy.timeline import HeadScan
from clutto_bridge.teams.audit import AuditLog
from clutto_bridge.teams.retention import RetentionService

log = logging.getLogger("clutto.sweep")

REASON = "Removed by the team's retention policy"
# A redaction refused (429) or failed on the homeserver's side (5xx) is tried again this often.
REDACTION_ATTEMPTS = 6


class Phase(StrEnum):
    FILL = "fill"  # reading history the stream may have missed into the index
    HEAD = "head"  # walking the index from the oldest row to the purge point
    TAIL = "tail"  # redacting expired events a purge cannot reach
    PURGE = "purge"  # purging before the purge point, then deleting orphaned media


@dataclass
class RoomSweep:
    """How far the sweep of the current room got."""

    phase: Phase = Phase.FILL
    redact_reachable: bool = False  # redact what the purge removes too (the room's path)
    redact_unreachable: bool = False  # redact what the purge cannot reach
    cursor: int = 0  # the index position the head walk or the tail reached
    scan: dict[str, Any] | None = None  # HeadScan.state()
    pending: list[str] | None = None  # the current page's victims, saved before they are redacted
    pending_cursor: int = 0  # the cursor after the pending page
    cuts_done: int = 0


@dataclass
class SweepProgress:
    cutoff: int
    rooms: list[str]
    redaction_only: bool
    room_index: int = 0
    redacted: int = 0  # redactions sent
    removed: int = 0  # expired events (and their edits and reactions) redacted or purged
    events_read: int = 0  # events read from the homeserver to fill the index
    index_rows_read: int = 0  # rows of the bridge's own index walked
    purged_rooms: int = 0
    media_deleted: int = 0
    held: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)  # room -> how it was swept
    room: RoomSweep = field(default_factory=RoomSweep)

    @classmethod
    def load(cls, saved: dict[str, Any]) -> SweepProgress:
        fields = {k: saved[k] for k in cls.__dataclass_fields__ if k in saved and k != "room"}
        room = saved.get("room") or {}
        if room.get("phase") not in set(Phase) or "plan" in room:
            room = {}  # a checkpoint of the scanning sweep before the index: redo this room
        known = {k: v for k, v in room.items() if k in RoomSweep.__dataclass_fields__}
        return cls(**fields, room=RoomSweep(**{**known, "phase": Phase(known.get("phase", Phase.FILL))}))


class RetentionSweep:
    def __init__(
        self, retention: RetentionService, teams: TeamStore, references: ReferenceStore, homeserver: Homeserver,
        admin: SynapseAdmin, audit: AuditLog, settings: RetentionSettings, homeserver_rate: int,
        timeline: TimelineIndex,
    ) -> None:
        self.retention = retention
        self.teams = teams
        self.references = references
        self.homeserver = homeserver
        self.admin = admin
        self.audit = audit
        self.settings = settings
        self.timeline = timeline
        self.limiter = RateLimiter(homeserver_rate)
        # Shared by the sweeps this process runs: they share the homeserver's capacity.
        self.pace = RedactionPace(ceiling=max(1, min(64, homeserver_rate)))

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
            cutoff=p.cutoff, redacted=p.redacted, removed=p.removed, rooms=len(p.rooms), held=len(p.held),
            media_deleted=p.media_deleted, redaction_only=p.redaction_only,
        )

    @staticmethod
    async def _save(ctx: JobContext, p: SweepProgress) -> None:
        await ctx.checkpoint(**asdict(p))

    async def _sweep_room(self, ctx: JobContext, p: SweepProgress, team: Team, room_id: str) -> None:
        r = p.room
        room = await self.timeline.room(room_id)
        if r.phase == Phase.FILL:
            p.events_read += await self._fill(room)
            path = await self.retention.room_path(team, room_id)
            r.redact_reachable = path.redact_reachable or p.redaction_only
            r.redact_unreachable = path.redact_unreachable or p.redaction_only
            p.paths[room_id] = "redact only (no admin API)" if p.redaction_only else path.describe()
            r.phase = Phase.HEAD
            await self._save(ctx, p)
        removed_before = p.removed
        if r.phase == Phase.HEAD:
            await self._walk_head(ctx, p, room)
        if r.phase == Phase.TAIL:
            await self._redact_tail(ctx, p, room)
        if p.removed > removed_before:
            await self.audit.record(team, None, "retention_redacted", room_id, events=p.removed - removed_before,
                                    cutoff=p.cutoff)
        if not p.redaction_only:
            await self._purge(ctx, p, team, room)
            await self._delete_orphaned_media(ctx, p, room_id)

    async def _fill(self, room: IndexedRoom) -> int:
        """Read what the stream may have missed into the index; each page is saved with the
        token to go on from, so an interrupted fill continues where it stopped."""
        read = 0
        while room.needs_fill:
            events, next_token = await self.homeserver.page_forward(
                room.room_id, room.fill_token, self.settings.batch_size, skip_redactions=True
            )
            read += len(events)
            for event in events:
                await self.retention.remember_references(
                    room.room_id, event["event_id"], event.get("origin_server_ts", 0), event.get("content") or {}
                )
            # At the end, the next fill starts again at this page (re-placing it is harmless).
            await self.timeline.fill(room, events, next_token or room.fill_token, finished=next_token is None)
        return read

    async def _walk_head(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom) -> None:
        r = p.room
        scan = HeadScan.load(p.cutoff, self.settings.purge_slice * 1000, r.scan)
        page = 16  # pages grow from small, so a walk that ends early reads few rows past the window's start
        while True:
            if r.pending is None:
                if scan.closed:
                    break
                rows = await self.timeline.rows_after(room.id, r.cursor, page)
                page = min(self.settings.batch_size, page * 2)
                if not rows:
                    scan.finish()
                    r.scan = scan.state()
                    await self._save(ctx, p)
                    break
                p.index_rows_read += len(rows)
                expired = [row for row in rows if scan.see(row)]
                doomed = [row.event_id for row in expired if not row.redacted] if r.redact_reachable else []
                if r.redact_unreachable:  # (an event redacted before had its relations redacted with it)
                    fresh = [row.event_id for row in expired if not row.redacted]
                    doomed += await self._relations(room.room_id, fresh, doomed, p.cutoff)
                r.pending, r.pending_cursor, r.scan = doomed, rows[-1].position, scan.state()
                await self._save(ctx, p)
            await self._commit_page(ctx, p, room)
        r.phase, r.cursor = Phase.TAIL, scan.purge_position or 0
        if p.redaction_only:
            r.cursor = 0  # nothing is purged: every expired event is out of reach
        await self._save(ctx, p)

    async def _redact_tail(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom) -> None:
        r = p.room
        while r.redact_unreachable:
            if r.pending is None:
                rows = await self.timeline.expired_after(room.id, r.cursor, p.cutoff, self.settings.batch_size)
                p.index_rows_read += len(rows)
                if not rows:
                    break
                doomed = [row.event_id for row in rows]
                doomed += await self._relations(room.room_id, doomed, doomed, p.cutoff)
                r.pending, r.pending_cursor = doomed, rows[-1].position
                await self._save(ctx, p)
            await self._commit_page(ctx, p, room)
        r.phase = Phase.PURGE
        await self._save(ctx, p)

    async def _relations(self, room_id: str, expired: list[str], already: list[str], cutoff: int) -> list[str]:
        """Edits and reactions inside the window of expired events, not yet in ``already``."""
        return [e for e in await self.retention.relations_of(room_id, expired, cutoff) if e not in already]

    async def _commit_page(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom) -> None:
        """Redact the saved page, then count it and move the cursor past it."""
        r = p.room
        pending = r.pending or []
        await self._redact_all(room.room_id, pending)
        await self.timeline.mark_redacted(pending)
        p.redacted += len(pending)
        p.removed += len(pending)
        r.cursor, r.pending = r.pending_cursor, None
        await self._save(ctx, p)

    async def _redact_all(self, room_id: str, event_ids: list[str]) -> None:
        """Redact with as many requests in flight as the homeserver sustains (``RedactionPace``),
        within the rate limit; a refused or failed request is tried again at a lower pace."""
        waiting = [(event_id, 1) for event_id in reversed(event_ids)]
        running: dict[asyncio.Task, tuple[str, int]] = {}
        while waiting or running:
            while waiting and len(running) < self.pace.limit:
                event_id, attempt = waiting.pop()
                running[asyncio.create_task(self._redact_one(room_id, event_id))] = (event_id, attempt)
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                event_id, attempt = running.pop(task)
                try:
                    self.pace.completed(task.result())
                except MatrixRequestError as e:
                    if not (e.http_status == 429 or e.http_status >= 500) or attempt >= REDACTION_ATTEMPTS:
                        for other in running:
                            other.cancel()
                        await asyncio.gather(*running, return_exceptions=True)
                        raise
                    self.pace.refused()
                    waiting.append((event_id, attempt + 1))
                    await asyncio.sleep(min(5.0, 0.25 * 2**attempt))  # back off before the retry

    async def _redact_one(self, room_id: str, event_id: str) -> float:
        await self.limiter.acquire()
        started = time.monotonic()
        await self.homeserver.redact(room_id, event_id, REASON)
        return time.monotonic() - started

    async def _purge(self, ctx: JobContext, p: SweepProgress, team: Team, room: IndexedRoom) -> None:
        """Purge before each point in turn (one, unless ``purge_slice`` bounds purges), then
        forget the index rows the purge removed."""
        points = (p.room.scan or {}).get("points", [])
        purged_any = False
        for index in range(p.room.cuts_done, len(points)):
            await self.limiter.acquire()
            try:
                purged_any |= await self.admin.purge_history(room.room_id, points[index][1])
            except AdminUnavailable as e:
                log.warning("Purging %s is not possible (%s); the sweep redacts only", room.room_id, e)
                p.redaction_only = True
                await self._save(ctx, p)
                return
            p.room.cuts_done = index + 1
            await self._save(ctx, p)
        if points:
            # Messages redacted earlier were counted then; the rest are removed now.
            p.removed += await self.timeline.prune_before(room.id, points[-1][0])
            await self._save(ctx, p)
        if purged_any:
            p.purged_rooms += 1
            await self._save(ctx, p)
            await self.audit.record(team, None, "retention_purged", room.room_id, cuts=len(points))

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
