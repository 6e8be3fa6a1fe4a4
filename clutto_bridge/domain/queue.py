"""How the domain asks for durable work without depending on the job runner (which sits
above it and calls the domain)."""

from __future__ import annotations

from typing import Protocol

from clutto_bridge.db.job import Job, JobKind


class JobQueue(Protocol):
    async def enqueue(
        self, kind: JobKind, team_id: str, payload: dict | None = None, *, run_at: int | None = None
    ) -> Job:
        """Queue a job; a queued or running one of the same kind for the team is reused."""
        ...
