"""The retention sweep of one team: per room, fill the index, redact, purge once, delete media.

The bridge indexes every team room event as it arrives (``db/timeline.py``), so a sweep
reads what expired from its own database instead of the room's whole history. Per room:

1. **fill**: where the stream may have missed events, read the homeserver's history without
   redaction events and place it in the index in the homeserver's order: a room never read
   is read forward from where the last read ended; after a restart, the room's history is
   read backwards from its end down to the first event the index held when the bridge
   started (everything acknowledged before the stop is indexed), so a restart costs what
   came around and after it, not everything since the room's last fill;
2. **head**: walk the index from the oldest row to the first event inside the window;
   the expired messages before it are what a purge removes (redacted first where the room's
   path says so; their edits and reactions inside the window are redacted too);
3. **tail**: expired messages after that point (imported history with old timestamps placed
   after newer messages) cannot be purged and are redacted, unless the mode is ``never``;
4. **purge**: one purge up to the first event inside the window (more only when the
   operator bounds purges with ``purge_slice``), then the index rows before it go, and media
   that only removed events referenced is deleted;
5. **keys**: the bot's Megolm sessions whose every message expired are deleted from its
   crypto store, so a backup of the bridge database cannot decrypt what was removed either.

Progress is a ``SweepProgress``: the cutoff is fixed when the sweep starts, each page's
victims are checkpointed before they are redacted (a few pages are in flight at once, so
redactions never wait at a page boundary), and the cursor moves past a page only once it is
redacted, so a sweep resumed after a crash finishes the same work and never reaches into
the window. Pages with nothing to redact are checkpointed at most once a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import InitVar, asdict, dataclass, field
from enum import StrEnum
from typing import Any

from clutto_bridge.clock import Clock
from clutto_bridge.config import RetentionSettings
from clutto_bridge.db.references import ReferenceStore
from clutto_bridge.db.team import Team, TeamState, TeamStore
from clutto_bridge.db.timeline import END, IndexedRoom, TimelineIndex
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.jobs.ratelimit import RateLimiter
from clutto_bridge.jobs.runner import JobContext
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.redaction_pace import RedactionPace
from clutto_bridge.policy.timeline import CheckWalk, HeadFacts, HeadScan

log = logging.getLogger("clutto.sweep")

REASON = "Removed by the team's retention policy"
# A redaction refused (429) or failed on the homeserver's side (5xx) is tried again this often.
REDACTION_ATTEMPTS = 6
# Pages of the index read ahead while the redactions of the ones before are running.
WINDOW_PAGES = 4
# Seconds between checkpoints of progress that is cheap to redo (index pages without victims).
CHECKPOINT_EVERY = 1.0


class Phase(StrEnum):
    FILL = "fill"  # reading history the stream may have missed into the index
    HEAD = "head"  # walking the index from the oldest row to the purge point
    TAIL = "tail"  # redacting expired events a purge cannot reach
    PURGE = "purge"  # purging before the purge point, then deleting orphaned media


class PhaseClock:
    """Adds wall-clock seconds to ``totals`` per step; a nested step pauses the outer one,
    so the steps add up to the sweep's time."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self.stack: list[list[Any]] = []

    def _add(self, key: str, seconds: float) -> None:
        self.totals[key] = round(self.totals.get(key, 0.0) + seconds, 4)

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        now = time.monotonic()
        if self.stack:
            self._add(self.stack[-1][0], now - self.stack[-1][1])
        self.stack.append([key, now])
        try:
            yield
        finally:
            now = time.monotonic()
            done, since = self.stack.pop()
            self._add(done, now - since)
            if self.stack:
                self.stack[-1][1] = now


@dataclass
class RoomSweep:
    """How far the sweep of the current room got."""

    phase: Phase = Phase.FILL
    redact_reachable: bool = False  # redact what the purge removes too (the room's path)
    redact_unreachable: bool = False  # redact what the purge cannot reach
    cursor: int = 0  # the index position the head walk or the tail finished (all redacted before it)
    scan: dict[str, Any] | None = None  # HeadScan.state() after the last page read
    # Pages read and not yet finished, oldest first: [position after the page, its victims],
    # saved before their redactions are sent. Reading goes on after the last of them.
    pages: list[list[Any]] = field(default_factory=list)
    cuts_done: int = 0
    pruned: int | None = None  # messages the index forgot while the last purge ran, counted once it is done


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
    sessions_deleted: int = 0  # the bot's Megolm sessions of expired messages deleted
    held: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)  # room -> how it was swept
    # Seconds spent per step (claim, fill, select, redact, checkpoint, purge_call,
    # purge_wait, prune, media, keys, audit), summed over attempts: where a sweep's time goes.
    timings: dict[str, float] = field(default_factory=dict)
    # The redaction pace: [redactions done, limit] at the start and each change of the limit
    # (the first 64 changes), and the seconds the redactions took added up; that sum over the
    # ``redact`` timing is how many were in flight on average while redacting.
    pace: list[list[int]] = field(default_factory=list)
    redaction_seconds: float = 0.0
    room: RoomSweep = field(default_factory=RoomSweep)

    def __post_init__(self) -> None:
        self.clock = PhaseClock(self.timings)  # not fields: never checkpointed
        self.saved_at = time.monotonic()

    @classmethod
    def load(cls, saved: dict[str, Any]) -> SweepProgress:
        fields = {k: saved[k] for k in cls.__dataclass_fields__ if k in saved and k != "room"}
        room = saved.get("room") or {}
        if room.get("phase") not in set(Phase) or "plan" in room:
            room = {}  # a checkpoint of the scanning sweep before the index: redo this room
        known = {k: v for k, v in room.items() if k in RoomSweep.__dataclass_fields__}
        if room.get("pending") is not None:  # a checkpoint of one page at a time
            known["pages"] = [[room.get("pending_cursor", 0), room["pending"]]]
        return cls(**fields, room=RoomSweep(**{**known, "phase": Phase(known.get("phase", Phase.FILL))}))


PageReader = Callable[[int], Awaitable[tuple[int, list[str]] | None]]


class RedactionWindow:
    """Redactions of several pages in flight at once, as many at a time as ``RedactionPace``
    allows; a refused (429) or failed (5xx) request is tried again at a lower pace."""

    def __init__(self, sweep: RetentionSweep, room_id: str, p: SweepProgress) -> None:
        self.sweep, self.room_id, self.p = sweep, room_id, p
        self.waiting: deque[tuple[str, int, int]] = deque()  # (event id, attempt, page)
        self.running: dict[asyncio.Task, tuple[str, int, int]] = {}
        self.left: dict[int, int] = {}  # page -> redactions not yet done
        self.pages = 0
        self.done, self.before = 0, p.redacted  # redactions finished here, and by the sweep before

    @property
    def backlog(self) -> int:
        return len(self.waiting)

    def add(self, event_ids: list[str]) -> int:
        page, self.pages = self.pages, self.pages + 1
        self.left[page] = len(event_ids)
        self.waiting.extend((event_id, 1, page) for event_id in event_ids)
        self._launch()
        return page

    def _launch(self) -> None:
        while self.waiting and len(self.running) < self.sweep.pace.limit:
            event_id, attempt, page = self.waiting.popleft()
            task = asyncio.create_task(self.sweep._redact_one(self.room_id, event_id))
            self.running[task] = (event_id, attempt, page)

    async def until_done(self, page: int) -> None:
        while self.left[page] > 0:
            done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                event_id, attempt, of = self.running.pop(task)
                try:
                    seconds = task.result()
                    self.sweep.pace.completed(seconds)
                    self.left[of] -= 1
                    self._note(seconds)
                except MatrixRequestError as e:
                    if not (e.http_status == 429 or e.http_status >= 500) or attempt >= REDACTION_ATTEMPTS:
                        raise
                    self.sweep.pace.refused()
                    self.waiting.appendleft((event_id, attempt + 1, of))
                    await asyncio.sleep(min(5.0, 0.25 * 2**attempt))  # back off before the retry
            self._launch()
        del self.left[page]

    def _note(self, seconds: float) -> None:
        p, limit = self.p, self.sweep.pace.limit
        p.redaction_seconds = round(p.redaction_seconds + seconds, 4)
        if (not p.pace or p.pace[-1][1] != limit) and len(p.pace) < 64:
            p.pace.append([self.before + self.done, limit])
        self.done += 1

    async def close(self) -> None:
        """Cancel what is still running (the sweep failed or stops; its pages are saved)."""
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        self.running.clear()


@dataclass(kw_only=True, eq=False, repr=False)
class RetentionSweep:
    retention: RetentionService
    teams: TeamStore
    references: ReferenceStore
    homeserver: Homeserver
    admin: SynapseAdmin
    audit: AuditLog
    settings: RetentionSettings
    timeline: TimelineIndex
    clock: Clock
    homeserver_rate: InitVar[int]

    def __post_init__(self, homeserver_rate: int) -> None:
        self.limiter = RateLimiter(homeserver_rate)
        # Shared by the sweeps this process runs: they share the homeserver's capacity.
        # Starts at 16 in flight (Synapse on 2 cores redacts fastest at 32 to 64) and may climb
        # to 128, within jobs.homeserver_rate; the pace steps back where more only queues.
        ceiling = max(1, min(128, homeserver_rate))
        self.pace = RedactionPace(limit=min(16, ceiling), ceiling=ceiling)

    async def __call__(self, ctx: JobContext) -> None:
        team = await self.teams.get(ctx.job.team_id)
        if team is None or team.state != TeamState.ACTIVE:
            await ctx.checkpoint(skipped="team is gone")
            return
        if "cutoff" in ctx.progress:
            p = SweepProgress.load(ctx.progress)
        else:
            rooms = [r.room_id for r in await self.retention.rooms_to_sweep(team)]
            p = SweepProgress(self.retention.cutoff(team), rooms, redaction_only=not self.admin.available)
            # From when it became due: a sweep asked for now may reuse a periodic job made long ago.
            due = max(ctx.job.created_at, ctx.job.next_run_at)
            p.timings["claim"] = max(0, self.clock.now_ms() - due) / 1000
            await self._save(ctx, p)
        with p.clock("other"):  # what no step below accounts for
            while p.room_index < len(p.rooms):
                room_id = p.rooms[p.room_index]
                if await self.retention.is_held(team, room_id):
                    p.held = sorted({*p.held, room_id})
                else:
                    await self._sweep_room(ctx, p, team, room_id)
                p.room_index += 1
                p.room = RoomSweep()
                await self._save(ctx, p)
            with p.clock("audit"):
                await self.audit.record(
                    team,
                    ctx.job.payload.get("requested_by"),
                    AuditAction.RETENTION_SWEEP,
                    team.id,
                    cutoff=p.cutoff,
                    redacted=p.redacted,
                    removed=p.removed,
                    rooms=len(p.rooms),
                    held=len(p.held),
                    media_deleted=p.media_deleted,
                    sessions_deleted=p.sessions_deleted,
                    redaction_only=p.redaction_only,
                )
        ctx.progress["timings"] = p.timings  # saved with the finished job

    @staticmethod
    async def _save(ctx: JobContext, p: SweepProgress) -> None:
        with p.clock("checkpoint"):
            await ctx.checkpoint(**asdict(p))
        p.saved_at = time.monotonic()

    async def _sweep_room(self, ctx: JobContext, p: SweepProgress, team: Team, room_id: str) -> None:
        r = p.room
        room = await self.timeline.room(room_id)
        if r.phase == Phase.FILL:
            with p.clock("fill"):
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
            with p.clock("audit"):
                await self.audit.record(
                    team,
                    None,
                    AuditAction.RETENTION_REDACTED,
                    room_id,
                    events=p.removed - removed_before,
                    cutoff=p.cutoff,
                )
        if not p.redaction_only:
            await self._purge(ctx, p, team, room)
            with p.clock("media"):
                await self._delete_orphaned_media(ctx, p, room_id)
        with p.clock("keys"):  # last: a resumed sweep deletes what is left (a second time, nothing)
            p.sessions_deleted += await self.retention.forget_expired_sessions(room_id, p.cutoff)

    async def _fill(self, room: IndexedRoom) -> int:
        """Read what the stream may have missed into the index. A room never read is read
        forward, each page saved with the token to go on from, so an interrupted fill
        continues where it stopped; a room marked at a restart is then checked backwards."""
        read = 0
        while room.needs_fill:
            events, next_token = await self.homeserver.page_forward(
                room.room_id, room.fill_token, self.settings.batch_size, skip_redactions=True
            )
            read += len(events)
            await self._remember_references(room.room_id, events)
            # At the end, the next fill starts again at this page (re-placing it is harmless).
            await self.timeline.fill(room, events, next_token or room.fill_token, finished=next_token is None)
        if room.check_mark is not None:
            read += await self._check(room)
        return read

    async def _remember_references(self, room_id: str, events: list[dict[str, Any]]) -> None:
        """Note the media and relations of events read from the homeserver, as the stream does."""
        for event in events:
            await self.retention.remember_references(
                room_id, event["event_id"], event.get("origin_server_ts", 0), event.get("content") or {}
            )

    async def _check(self, room: IndexedRoom) -> int:
        """Read the room's history backwards until an event the index held at the restart, and
        place what came after it. Only compact entries are kept while walking; nothing is
        written before the end, so an interrupted check is simply done again."""
        walk = CheckWalk(room.room_id)
        read, token = 0, None
        size = 8  # pages grow from small: after most restarts the newest events are known already
        while not walk.met:
            events, token = await self.homeserver.page_backward(room.room_id, token, size, skip_redactions=True)
            size = min(self.settings.batch_size, size * 4)
            read += len(events)
            known = await self.timeline.known_before_check(room, CheckWalk.ids(events))
            await self._remember_references(room.room_id, walk.see(events, known))
            if token is None:
                break  # the beginning of what the homeserver holds: everything read is new
        await self.timeline.finish_check(room, walk)
        return read

    async def _walk_head(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom) -> None:
        r = p.room
        scan = HeadScan.load(p.cutoff, self.settings.purge_slice * 1000, r.scan)
        size = 16  # pages grow from small, so a walk that ends early reads few rows past the window's start

        async def next_page(after: int) -> tuple[int, list[str]] | None:
            nonlocal size
            if scan.closed:
                return None
            if not r.redact_reachable and scan.fresh():
                # Nothing before the purge point is redacted: the database finds the point,
                # and only the relations a purge cannot reach come back to Python.
                with p.clock("select"):
                    facts = await self.timeline.head(room.id, after, p.cutoff)
                if scan.can_close_with(facts):
                    return await settle(after, facts)
            with p.clock("select"):
                rows = await self.timeline.rows_after(room.id, after, size)
            size = min(self.settings.batch_size, size * 2)
            if not rows:
                scan.finish()
                r.scan = scan.state()
                return None
            p.index_rows_read += len(rows)
            expired = [row for row in rows if scan.see(row)]
            doomed = [row.event_id for row in expired if not row.redacted] if r.redact_reachable else []
            if r.redact_unreachable:  # (an event redacted before had its relations redacted with it)
                fresh = [row.event_id for row in expired if not row.redacted]
                with p.clock("select"):
                    doomed += await self._relations(room.room_id, fresh, doomed, p.cutoff)
            r.scan = scan.state()
            return rows[-1].position, doomed

        async def settle(after: int, facts: HeadFacts) -> tuple[int, list[str]]:
            scan.close_with(facts)
            r.scan = scan.state()
            p.index_rows_read += facts.rows
            doomed: list[str] = []
            end = scan.purge_position or after
            if r.redact_unreachable and facts.first_expired is not None:
                with p.clock("select"):
                    doomed = await self.timeline.relations_inside_window(
                        room.room_id, room.id, after, facts.first_inside[0] if facts.first_inside else END, p.cutoff
                    )
            return end, doomed

        await self._redact_pages(ctx, p, room, next_page)
        r.phase, r.cursor = Phase.TAIL, scan.purge_position or 0
        if p.redaction_only:
            r.cursor = 0  # nothing is purged: every expired event is out of reach
        await self._save(ctx, p)

    async def _redact_tail(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom) -> None:
        r = p.room

        async def next_page(after: int) -> tuple[int, list[str]] | None:
            with p.clock("select"):
                rows = await self.timeline.expired_after(room.id, after, p.cutoff, self.settings.batch_size)
                p.index_rows_read += len(rows)
                if not rows:
                    return None
                doomed = [row.event_id for row in rows]
                doomed += await self._relations(room.room_id, doomed, doomed, p.cutoff)
            return rows[-1].position, doomed

        if r.redact_unreachable:
            with p.clock("select"):
                first = await self.timeline.first_expired_after(room.id, r.cursor, p.cutoff)
            if first is not None:  # else nothing is out of reach, and the window is not walked
                r.cursor = max(r.cursor, first - 1)
                await self._redact_pages(ctx, p, room, next_page)
        r.phase = Phase.PURGE
        await self._save(ctx, p)

    async def _relations(self, room_id: str, expired: list[str], already: list[str], cutoff: int) -> list[str]:
        """Edits and reactions inside the window of expired events, not yet in ``already``."""
        return [e for e in await self.retention.relations_of(room_id, expired, cutoff) if e not in already]

    async def _redact_pages(self, ctx: JobContext, p: SweepProgress, room: IndexedRoom, next_page: PageReader) -> None:
        """Read pages with ``next_page`` and redact their victims, several pages in flight.

        A page's victims are checkpointed before its first redaction is sent, and the cursor
        moves past a page only once all of it is redacted, oldest page first: a resumed sweep
        redoes the saved pages and reads on after the last of them, so nothing is skipped.
        The next pages are read while the redactions of the ones before are still running,
        so the homeserver never waits at a page boundary. A page with nothing to redact costs
        no checkpoint of its own (at most one a second is written for those).
        """
        r = p.room
        window = RedactionWindow(self, room.room_id, p)
        pages = deque(window.add(victims) for _, victims in r.pages)  # resumed: the saved pages again
        ended = False
        try:
            while True:
                while not ended and len(r.pages) < WINDOW_PAGES and window.backlog < 2 * self.pace.limit:
                    page = await next_page(r.pages[-1][0] if r.pages else r.cursor)
                    if page is None:
                        ended = True
                    elif page[1] or r.pages:
                        r.pages.append([page[0], page[1]])
                        if page[1]:
                            await self._save(ctx, p)  # the victims, before the first is redacted
                        pages.append(window.add(page[1]))
                    else:
                        r.cursor = page[0]
                        await self._save_now_and_then(ctx, p)
                if not r.pages:
                    return
                with p.clock("redact"):
                    await window.until_done(pages.popleft())
                position, victims = r.pages.pop(0)
                if victims:
                    with p.clock("index_write"):
                        await self.timeline.mark_redacted(victims)
                p.redacted += len(victims)
                p.removed += len(victims)
                r.cursor = position
                await self._save_now_and_then(ctx, p)
        finally:
            await window.close()

    async def _save_now_and_then(self, ctx: JobContext, p: SweepProgress) -> None:
        """Checkpoint progress that is cheap to redo at most every ``CHECKPOINT_EVERY`` seconds."""
        if time.monotonic() - p.saved_at >= CHECKPOINT_EVERY:
            await self._save(ctx, p)

    async def _redact_one(self, room_id: str, event_id: str) -> float:
        await self.limiter.acquire()
        started = time.monotonic()
        await self.homeserver.redact(room_id, event_id, REASON)
        return time.monotonic() - started

    async def _purge(self, ctx: JobContext, p: SweepProgress, team: Team, room: IndexedRoom) -> None:
        """Purge before each point in turn (one, unless ``purge_slice`` bounds purges), and
        forget the index rows the purge removes while the homeserver purges the last cut.

        Forgetting them before the purge is known complete is safe: if it fails, the job
        purges the same point again, and any later purge reaches at least as far (the index
        walk starts where the rows end), so nothing is left on the homeserver for good.
        """
        r = p.room
        points = (r.scan or {}).get("points", [])
        purged_any = pruned = False
        for index in range(r.cuts_done, len(points)):
            await self.limiter.acquire()
            try:
                with p.clock("purge_call"):
                    purge_id = await self.admin.start_purge(room.room_id, points[index][1])
            except AdminUnavailable as e:
                log.warning("Purging %s is not possible (%s); the sweep redacts only", room.room_id, e)
                p.redaction_only = True
                await self._save(ctx, p)
                return
            if purge_id is not None:
                purged_any = True
                if index == len(points) - 1:
                    await self._wait_and_prune(ctx, p, room, purge_id, points[-1][0])
                    pruned = True
                else:
                    with p.clock("purge_wait"):
                        await self.admin.wait_for_purge(room.room_id, purge_id)
            r.cuts_done = index + 1
            await self._save(ctx, p)
        if points and not pruned:  # nothing to purge at the last point, or resumed after it
            with p.clock("prune"):
                p.removed += await self.timeline.prune_before(room.id, points[-1][0])
            await self._save(ctx, p)
        if purged_any:
            p.purged_rooms += 1
            await self._save(ctx, p)
            with p.clock("audit"):
                await self.audit.record(team, None, AuditAction.RETENTION_PURGED, room.room_id, cuts=len(points))

    async def _wait_and_prune(
        self, ctx: JobContext, p: SweepProgress, room: IndexedRoom, purge_id: str, position: int
    ) -> None:
        """Wait for the purge while the index rows before ``position`` are deleted; the messages
        among them (those not redacted, so not counted yet) count as removed once it is done."""
        r = p.room

        async def prune() -> None:
            count = await self.timeline.prune_before(room.id, position)
            r.pruned = (r.pruned or 0) + count

        pruning = asyncio.create_task(prune())
        try:
            with p.clock("purge_wait"):
                await self.admin.wait_for_purge(room.room_id, purge_id)
            with p.clock("prune"):
                await pruning
        except asyncio.CancelledError:
            pruning.cancel()
            raise
        except Exception:
            await asyncio.gather(pruning, return_exceptions=True)
            await self._save(ctx, p)  # the retry purges this point again and counts these then
            raise
        p.removed += r.pruned or 0
        r.pruned = None

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
