"""The job runner: claim a due job, run its handler, checkpoint, retry with backoff.

Modelled on Synapse's task scheduler: handlers are registered by kind at start-up, a job's
``progress`` is the checkpoint its handler updates as it goes, so a job picked up again
after a crash continues where it stopped. A worker holds a job with a lease that every
checkpoint extends; a stopped worker releases it, a crashed one lets it expire.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from mautrix.errors import MatrixConnectionError, MatrixRequestError

from clutto_bridge.config import JobSettings
from clutto_bridge.db.job import DONE, FAILED, QUEUED, Job, JobStore
from clutto_bridge.matrix.admin import HomeserverTaskFailed

log = logging.getLogger("clutto.jobs")


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
        if not await self.runner.store.checkpoint(self.job, self.runner.worker, _now(), self.runner.lease_ms):
            raise LeaseLost(f"job {self.job.id} was taken over")


Handler = Callable[[JobContext], Awaitable[None]]


def _now() -> int:
    # Leases are about process liveness, so they use the wall clock, not the bridge's
    # injectable policy clock.
    return int(time.time() * 1000)


def _retryable(error: BaseException) -> bool:
    if isinstance(error, (Retry, HomeserverTaskFailed, MatrixConnectionError, ConnectionError, asyncio.TimeoutError)):
        return True
    status = getattr(error, "http_status", 0) if isinstance(error, MatrixRequestError) else 0
    return status >= 500 or status == 429


class JobRunner:
    def __init__(self, store: JobStore, settings: JobSettings) -> None:
        self.store = store
        self.settings = settings
        self.lease_ms = settings.lease * 1000
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.handlers: dict[str, Handler] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def enqueue(self, kind: str, team_id: str, payload: dict | None = None, *, run_at: int | None = None) -> Job:
        """Queue a job; a queued or running job of the same kind for the team is reused.

        Asked for now (``run_at`` None), a reused job scheduled for later is made due now.
        """
        existing = await self.store.active(kind, team_id)
        if existing:
            if run_at is None and existing.state == QUEUED and existing.next_run_at > _now():
                await self.store.due_now(existing, _now())
                self._wake.set()
            return existing
        job = await self.store.add(kind, team_id, payload or {}, _now() if run_at is None else run_at)
        self._wake.set()
        return job

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="clutto-job-runner")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                job = await self.store.claim(self.worker, _now(), self.lease_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Could not claim a job")
                job = None
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
                except asyncio.TimeoutError:
                    pass
                continue
            await self.run(job)

    async def run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self.store.finish(job, FAILED, _now(), f"no handler for job kind {job.kind!r}")
            return
        log.info("Running job %s (%s, team %s, attempt %d)", job.id, job.kind, job.team_id, job.attempts + 1)
        try:
            await handler(JobContext(job, self))
        except asyncio.CancelledError:
            # Stopping: hand the job back at once so the next start resumes it.
            await asyncio.shield(self.store.release(job, _now()))
            raise
        except LeaseLost as e:
            log.warning("%s", e)
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            if _retryable(e) and job.attempts + 1 < self.settings.max_attempts:
                delay = self.settings.retry_backoff * 1000 * 2 ** job.attempts
                log.warning("Job %s failed (%s); retrying in %ds", job.id, reason, delay // 1000)
                await self.store.retry_later(job, _now() + delay, reason, _now())
            else:
                log.error("Job %s failed: %s", job.id, reason, exc_info=not _retryable(e))
                await self.store.finish(job, FAILED, _now(), reason)
        else:
            await self.store.finish(job, DONE, _now())
            log.info("Job %s (%s) done: %s", job.id, job.kind, job.progress)

    async def wait(self, job_id: int, timeout: float) -> Job:
        """Wait until a job is done or failed (for callers that want the result)."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.store.get(job_id)
            if job.state in (DONE, FAILED) or time.monotonic() > deadline:
                return job
            await asyncio.sleep(0.2)
