"""Periodic work: each task declared once, with its own interval, in its own loop.

As Synapse gives each periodic task its own ``clock.looping_call``, the bridge declares one
``Periodic`` per task (``periodic_jobs``) and a ``Schedule`` runs each in its own asyncio loop:
a slow or failing task neither delays nor stops the others. Durable work is not done here: a
task queues jobs (sweeps, exports, purges) in the job table, whose runner survives restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from clutto_bridge.config import Settings
from clutto_bridge.db.job import JobKind, JobStore
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.lifecycle import TrialLifecycle
from clutto_bridge.domain.onboarding import Onboarding
from clutto_bridge.domain.service import TeamService
from clutto_bridge.jobs.reach import HomeserverReach
from clutto_bridge.jobs.runner import JobRunner

log = logging.getLogger("clutto.schedule")


class RequestRecords(Protocol):
    """The access records of served requests (``web/request_records.py``, above this layer)."""

    async def forget_expired(self) -> int: ...


# The longest a periodic check waits: what depends on days (trial warnings, reminders) is at
# most an hour late, and a task that failed tries again within the hour.
HOUR = 3600

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Periodic:
    """One periodic task: ``run`` every ``interval`` seconds, the first time at start
    (Synapse's ``looping_call_now``) or, with ``at_start=False``, after one interval."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]
    at_start: bool = True


class Schedule:
    """Runs each ``Periodic`` in its own task until ``stop``. ``sleep`` is injectable so
    tests can move time themselves; the bridge passes ``asyncio.sleep`` (real time, never the
    bridge's clock, which tests move to make things due without the schedule acting on them)."""

    def __init__(self, jobs: Iterable[Periodic], sleep: Sleep = asyncio.sleep) -> None:
        self.jobs = list(jobs)
        self._sleep = sleep
        self._tasks: list[asyncio.Task] = []
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"periodic tasks need distinct names: {names}")
        if any(job.interval <= 0 for job in self.jobs):
            raise ValueError("a periodic task needs an interval above zero")

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the schedule is running already")
        self._tasks = [asyncio.create_task(self._loop(job), name=f"clutto-periodic-{job.name}") for job in self.jobs]

    async def stop(self) -> None:
        """Cancel every loop and wait for it, so no task runs once this returns."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, job: Periodic) -> None:
        if not job.at_start:
            await self._sleep(job.interval)
        while True:
            try:
                await job.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("The periodic task %r failed; it runs again in %.0fs", job.name, job.interval)
            await self._sleep(job.interval)


def periodic_jobs(
    settings: Settings,
    *,
    teams: TeamService,
    jobs: JobStore,
    runner: JobRunner,
    onboarding: Onboarding,
    lifecycle: TrialLifecycle,
    access: RequestRecords,
    audit: AuditLog,
    reach: HomeserverReach,
) -> list[Periodic]:
    """The bridge's periodic tasks, each with the interval its own setting asks for."""
    sweep_interval = settings.retention.sweep_interval
    return [
        # The homeserver pings the bridge: what it held back comes now, and a failure is logged.
        Periodic("homeserver ping", settings.appservice.ping_interval, reach.check),
        # Members who could not be told of a new policy version are tried again.
        Periodic("policy announcement", HOUR, onboarding.announce),
        Periodic(
            "retention sweeps", min(sweep_interval, HOUR), lambda: schedule_sweeps(teams, jobs, runner, sweep_interval)
        ),
        Periodic("trial lifecycle", HOUR, lifecycle.check),
        Periodic("consent reminders", min(settings.reminder_interval, HOUR), onboarding.remind_due),
        Periodic("request records", min(settings.collection.retention, HOUR), access.forget_expired),
        # A checkpoint at least every audit.checkpoint_interval while rows arrive (and on stop).
        Periodic("audit checkpoint", settings.audit.checkpoint_interval, audit.checkpoint, at_start=False),
    ]


async def schedule_sweeps(teams: TeamService, jobs: JobStore, runner: JobRunner, interval_s: int) -> int:
    """Queue the next sweep of teams that have none queued; return how many were queued."""
    interval_ms = interval_s * 1000
    queued = 0
    for team in await teams.active():
        if await jobs.active(JobKind.SWEEP, team.id):
            continue
        last = await jobs.last_done(JobKind.SWEEP, team.id)
        # The first sweep comes one interval after the team was created.
        since = last.updated_at if last is not None else team.created_at
        run_at = max(runner.clock.now_ms(), since + interval_ms)
        await runner.enqueue(JobKind.SWEEP, team.id, {"requested_by": None, "scheduled": True}, run_at=run_at)
        queued += 1
    return queued
