"""Periodic work: every active team gets a retention sweep once per sweep interval."""

from __future__ import annotations

from clutto_bridge.db.job import DONE
from clutto_bridge.db.team import ACTIVE, Team
from clutto_bridge.jobs.runner import _now
from clutto_bridge.teams.retention import SWEEP, RetentionService


async def schedule_sweeps(retention: RetentionService) -> int:
    """Queue the next sweep of teams that have none queued; return how many were queued."""
    interval_ms = retention.settings.retention.sweep_interval * 1000
    queued = 0
    for team in await Team.in_state(retention.db, ACTIVE):
        if await retention.jobs.active(SWEEP, team.id):
            continue
        last = await retention.db.fetchval(
            "SELECT MAX(updated_at) FROM job WHERE kind=$1 AND team_id=$2 AND state=$3", SWEEP, team.id, DONE
        )
        # The first sweep comes one interval after the team was created.
        run_at = max(_now(), (last if last is not None else team.created_at) + interval_ms)
        await retention.runner.enqueue(SWEEP, team.id, {"requested_by": None, "scheduled": True}, run_at=run_at)
        queued += 1
    return queued
