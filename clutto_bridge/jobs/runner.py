"""The job runner: claim due jobs, run their handlers, checkpoint, retry with backoff.

Modelled on Synapse's task scheduler: handlers are registered by kind at start-up, a job's
``progress`` is the checkpoint its handler updates as it goes, so a job picked up again
after a crash continues where it stopped. A worker holds a job with a lease that every
checkpoint and a heartbeat (every third of the lease) extend; a stopped worker releases it,
a crashed one lets it expire, and a bridge restarted on the same host takes back at once the
jobs of a worker there whose process is gone (no wait for the lease). Up to
``jobs.concurrency`` jobs run at once, so one long sweep never holds every other team's
export or purge; finished jobs are forgotten after ``jobs.keep_finished``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from clutto_bridge.clock import Clock
from clutto_bridge.config import JobSettings
from clutto_bridge.db.job import Job, JobKind, JobNotifications, JobState, JobStore
from clutto_bridge.matrix.admin import HomeserverTaskFailed
from clutto_bridge.matrix.errors import MatrixConnectionError, MatrixRequestError
from clutto_bridge.metrics import Metrics

log = logging.getLogger("clutto.jobs")

# How often finished jobs older than ``jobs.keep_finished`` are deleted.
CLEANUP_EVERY_MS = 3_600_000


class LeaseLost(Exception):
    """Another worker took the job over (this one was too slow to checkpoint)."""


class Retry(Exception):
    """A passing failure: run the job again later."""


@dataclass
class JobContext:
    job: Job
    runner: JobRunner

    @property
    def progress(self) -> dict[str, Any]:
        return self.job.progress

    async def checkpoint(self, **progress: Any) -> None:
        """Record progress durably and extend the lease."""
        self.job.progress.update(progress)
        r = self.runner
        if not await r.store.checkpoint(self.job, r.worker, r.clock.now_ms(), r.lease_ms):
            raise LeaseLost(f"job {self.job.id} was taken over")


Handler = Callable[[JobContext], Awaitable[None]]


def worker_name(host: str, pid: int) -> str:
    return f"{host}-{pid}-{secrets.token_hex(3)}"


def parse_worker_name(name: str) -> tuple[str, int] | None:
    """(host, pid) of a worker name; None for one this version did not write."""
    host, _, rest = name.rpartition("-")
    host, _, pid = host.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() and rest else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _retryable(error: BaseException) -> bool:
    if isinstance(error, (Retry, HomeserverTaskFailed, MatrixConnectionError, ConnectionError, asyncio.TimeoutError)):
        return True
    status = getattr(error, "http_status", 0) if isinstance(error, MatrixRequestError) else 0
    return status >= 500 or status == 429


@dataclass(kw_only=True, eq=False, repr=False)
class JobRunner:
    """Also the domain's ``JobQueue``: services enqueue through ``enqueue`` only."""

    store: JobStore
    settings: JobSettings
    clock: Clock
    metrics: Metrics | None = None
    notifications: JobNotifications | None = None
    handlers: dict[str, Handler] = field(init=False, default_factory=dict)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _task: asyncio.Task | None = field(init=False, default=None)
    _heartbeat: asyncio.Task | None = field(init=False, default=None)
    _listener: asyncio.Task | None = field(init=False, default=None)
    _running: set[asyncio.Task] = field(init=False, default_factory=set)
    _stopping: bool = field(init=False, default=False)
    _cleaned_at: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.lease_ms = self.settings.lease * 1000
        self.worker = worker_name(socket.gethostname(), os.getpid())

    def register(self, kind: JobKind | str, handler: Handler) -> None:
        self.handlers[str(kind)] = handler
        if self.metrics is not None:
            self.metrics.allow("job_kind", [str(kind)])

    def _ended(self, job: Job, state: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.job_ended(job.kind, state, time.monotonic() - started)

    async def enqueue(
        self, kind: JobKind | str, team_id: str, payload: dict | None = None, *, run_at: int | None = None
    ) -> Job:
        """Queue a job; a queued or running job of the same kind for the team is reused.

        Asked for now (``run_at`` None), a reused job scheduled for later is made due now.
        """
        now = self.clock.now_ms()
        existing = await self.store.active(str(kind), team_id)
        if existing:
            if run_at is None and existing.state == JobState.QUEUED and existing.next_run_at > now:
                await self.store.due_now(existing, now)
                self._wake.set()
            return existing
        job = await self.store.add(str(kind), team_id, payload or {}, now, run_at)
        self._wake.set()
        return job

    async def enqueue_new(self, kind: JobKind | str, team_id: str, payload: dict) -> Job:
        """Queue a job of its own, never reusing one (a webhook delivery per event)."""
        job = await self.store.add(str(kind), team_id, payload, self.clock.now_ms())
        self._wake.set()
        return job

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="clutto-job-runner")
        self._heartbeat = asyncio.create_task(self._beat(), name="clutto-job-heartbeat")
        if self.notifications is not None:
            self._listener = asyncio.create_task(
                self.notifications.run(self._wake.set), name="clutto-job-notifications"
            )

    async def stop(self) -> None:
        """Stop claiming, and hand every running job back at once (the next start resumes it)."""
        self._stopping = True
        self._wake.set()
        tasks = [t for t in (self._task, self._heartbeat, self._listener, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._heartbeat = self._listener = None

    async def take_back_from_dead_local_workers(self) -> int:
        """Release the jobs of workers on this host whose process no longer exists.

        A bridge killed and started again would otherwise wait out the old lease. Only
        this host's processes can be checked; jobs of other hosts wait for their lease.
        """
        released = 0
        host = socket.gethostname()
        for worker in await self.store.holders():
            parsed = parse_worker_name(worker)
            if parsed is None or parsed[0] != host or parsed[1] == os.getpid() or _process_alive(parsed[1]):
                continue
            count = await self.store.release_held_by(worker, self.clock.now_ms())
            if count:
                log.info("Took back %d job(s) of %s, whose process is gone", count, worker)
                released += count
        if released:
            self._wake.set()
        return released

    async def _beat(self) -> None:
        """Extend the leases of the jobs this worker holds, so a long step never loses one."""
        interval = max(self.lease_ms / 3000, 0.5)
        while True:
            await asyncio.sleep(interval)
            if self._running:
                now = self.clock.now_ms()
                try:
                    await self.store.extend_leases(self.worker, now + self.lease_ms, now)
                except Exception:
                    log.exception("Could not extend job leases")

    async def _loop(self) -> None:
        while not self._stopping:
            await self._clean_up()
            job = None
            if len(self._running) < self.settings.concurrency:
                try:
                    job = await self.store.claim(self.worker, self.clock.now_ms(), self.lease_ms)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("Could not claim a job")
            if job is not None:
                task = asyncio.create_task(self.run(job), name=f"clutto-job-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._finished)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
            except TimeoutError:
                pass

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _clean_up(self) -> None:
        now = self.clock.now_ms()
        if now - self._cleaned_at < CLEANUP_EVERY_MS:
            return
        self._cleaned_at = now
        try:
            deleted = await self.store.delete_finished_before(now - self.settings.keep_finished * 1000)
        except Exception:
            log.exception("Could not delete old finished jobs")
            return
        if deleted:
            log.info("Deleted %d finished job(s) older than %ds", deleted, self.settings.keep_finished)

    async def run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        now = self.clock.now_ms
        if handler is None:
            await self.store.finish(job, JobState.FAILED, now(), f"no handler for job kind {job.kind!r}")
            return
        log.info("Running job %s (%s, team %s, attempt %d)", job.id, job.kind, job.team_id, job.attempts + 1)
        started = time.monotonic()
        try:
            await handler(JobContext(job, self))
        except asyncio.CancelledError:
            # Stopping: hand the job back at once so the next start resumes it.
            await asyncio.shield(self.store.release(job, now()))
            raise
        except LeaseLost as e:
            log.warning("%s", e)
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            if _retryable(e) and job.attempts + 1 < self.settings.max_attempts:
                delay = self.settings.retry_backoff * 1000 * 2**job.attempts
                log.warning("Job %s failed (%s); retrying in %ds", job.id, reason, delay // 1000)
                await self.store.retry_later(job, now() + delay, reason, now())
                self._ended(job, "retry", started)
            else:
                log.error("Job %s failed: %s", job.id, reason, exc_info=not _retryable(e))
                await self.store.finish(job, JobState.FAILED, now(), reason)
                self._ended(job, "failed", started)
        else:
            await self.store.finish(job, JobState.DONE, now())
            self._ended(job, "done", started)
            log.info("Job %s (%s) done: %s", job.id, job.kind, job.progress)

    async def wait(self, job_id: int, timeout: float) -> Job:
        """Wait until a job is done or failed (for callers that want the result)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            job = await self.store.get(job_id)
            if job is None:
                raise LookupError(f"there is no job {job_id}")
            if job.finished or loop.time() > deadline:
                return job
            await asyncio.sleep(0.2)
