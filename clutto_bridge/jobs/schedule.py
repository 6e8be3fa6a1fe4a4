"""Periodic work: every active team gets a retention sweep once per sweep interval."""

from __future__ import annotations

from clutto_bridge.db.job import JobKind, JobStore
from clutto_bridge.jobs.runner import JobRunner
from clutto_bridge.teams.service import TeamService


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
