"""A durable job row: what to do, how far it got, who holds it until when."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import asyncpg
from mautrix.util.async_db import Database, Scheme


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    """The kinds of durable work; each has one handler in ``jobs/``."""

    SWEEP = "retention_sweep"
    EXPORT = "export"
    PURGE = "team_purge"
    WEBHOOK = "webhook"
    REENCRYPT = "reencrypt"  # bridge-wide (team_id ''): every encrypted value under the primary key


# A job in one of these states is still to be finished by some worker.
_UNFINISHED = "state IN ('queued', 'running')"


@dataclass
class Job:
    id: int
    kind: str
    team_id: str  # '' for bridge-wide jobs
    state: JobState
    payload: dict[str, Any]
    progress: dict[str, Any]
    attempts: int
    next_run_at: int
    locked_by: str | None
    locked_until: int | None
    created_at: int
    updated_at: int
    error: str | None = None

    columns: ClassVar[str] = (
        "id, kind, team_id, state, payload, progress, attempts, next_run_at, locked_by, locked_until, "
        "created_at, updated_at, error"
    )

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED)

    @classmethod
    def _from_row(cls, row: Any) -> Job:
        return cls(
            **{
                **row,
                "state": JobState(row["state"]),
                "payload": json.loads(row["payload"]),
                "progress": json.loads(row["progress"]),
            }
        )


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, kind: str, team_id: str, payload: dict[str, Any], now_ms: int, run_at: int | None = None
    ) -> Job:
        row = await self.db.fetchrow(
            "INSERT INTO job (kind, team_id, state, payload, progress, attempts, next_run_at, created_at, updated_at) "
            f"VALUES ($1, $2, $3, $4, '{{}}', 0, $5, $6, $6) RETURNING {Job.columns}",
            str(kind),
            team_id,
            str(JobState.QUEUED),
            json.dumps(payload),
            now_ms if run_at is None else run_at,
            now_ms,
        )
        await self._notify()
        return Job._from_row(row)

    async def _notify(self) -> None:
        """Tell every process listening on the queue (``JobNotifications``) that a job may be due.

        PostgreSQL only: processes sharing an SQLite file are one bridge and its CLI, and the
        bridge polls (``jobs.poll_interval``)."""
        if self.db.scheme != Scheme.SQLITE:
            await self.db.execute(f"NOTIFY {CHANNEL}")

    async def get(self, job_id: int) -> Job | None:
        row = await self.db.fetchrow(f"SELECT {Job.columns} FROM job WHERE id=$1", job_id)
        return Job._from_row(row) if row else None

    async def active(self, kind: str, team_id: str) -> Job | None:
        """The queued or running job of this kind for this team ('' for bridge-wide jobs)."""
        row = await self.db.fetchrow(
            f"SELECT {Job.columns} FROM job WHERE kind=$1 AND team_id=$2 AND {_UNFINISHED} ORDER BY id LIMIT 1",
            str(kind),
            team_id,
        )
        return Job._from_row(row) if row else None

    async def latest(self, team_id: str, kind: str, limit: int = 20) -> list[Job]:
        """The team's newest jobs of one kind, newest first."""
        rows = await self.db.fetch(
            f"SELECT {Job.columns} FROM job WHERE team_id=$1 AND kind=$2 ORDER BY id DESC LIMIT $3",
            team_id,
            str(kind),
            limit,
        )
        return [Job._from_row(r) for r in rows]

    async def last_done(self, kind: str, team_id: str) -> Job | None:
        row = await self.db.fetchrow(
            f"SELECT {Job.columns} FROM job WHERE kind=$1 AND team_id=$2 AND state=$3 ORDER BY id DESC LIMIT 1",
            str(kind),
            team_id,
            str(JobState.DONE),
        )
        return Job._from_row(row) if row else None

    async def claim(self, worker: str, now_ms: int, lease_ms: int) -> Job | None:
        """Take the next job that is due and not held by a live worker.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets several workers claim concurrently without
        waiting on each other. SQLite serialises writers, so the same UPDATE is safe there.
        """
        ready = f"{_UNFINISHED} AND next_run_at <= $2 AND (locked_until IS NULL OR locked_until < $2)"
        if self.db.scheme == Scheme.SQLITE:
            pick = f"SELECT id FROM job WHERE {ready} ORDER BY next_run_at, id LIMIT 1"
        else:
            pick = f"SELECT id FROM job WHERE {ready} ORDER BY next_run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        row = await self.db.fetchrow(
            f"UPDATE job SET state='running', locked_by=$1, locked_until=$3, updated_at=$2 "
            f"WHERE id = ({pick}) RETURNING {Job.columns}",
            worker,
            now_ms,
            now_ms + lease_ms,
        )
        return Job._from_row(row) if row else None

    async def checkpoint(self, job: Job, worker: str, now_ms: int, lease_ms: int) -> bool:
        """Save progress and extend the lease; False if another worker took the job over."""
        status = await self.db.fetchval(
            "UPDATE job SET progress=$1, locked_until=$2, updated_at=$3 WHERE id=$4 AND locked_by=$5 RETURNING id",
            json.dumps(job.progress),
            now_ms + lease_ms,
            now_ms,
            job.id,
            worker,
        )
        return status is not None

    async def finish(self, job: Job, state: JobState, now_ms: int, error: str | None = None) -> None:
        job.state, job.error = state, error
        await self.db.execute(
            "UPDATE job SET state=$1, progress=$2, error=$3, locked_by=NULL, locked_until=NULL, updated_at=$4 WHERE id=$5",
            str(state),
            json.dumps(job.progress),
            error,
            now_ms,
            job.id,
        )

    async def due_now(self, job: Job, now_ms: int) -> None:
        job.next_run_at = now_ms
        await self.db.execute(
            "UPDATE job SET next_run_at=$1, updated_at=$1 WHERE id=$2 AND state='queued'", now_ms, job.id
        )
        await self._notify()

    async def release(self, job: Job, now_ms: int) -> None:
        """Hand a job back untouched (shutdown): it is due again at once, no attempt counted."""
        await self.db.execute(
            "UPDATE job SET state='queued', progress=$1, locked_by=NULL, locked_until=NULL, updated_at=$2 WHERE id=$3",
            json.dumps(job.progress),
            now_ms,
            job.id,
        )
        await self._notify()  # another worker may take it over now

    async def retry_later(self, job: Job, next_run_at: int, error: str, now_ms: int) -> None:
        job.attempts += 1
        await self.db.execute(
            "UPDATE job SET state='queued', attempts=$1, next_run_at=$2, error=$3, progress=$4, "
            "locked_by=NULL, locked_until=NULL, updated_at=$5 WHERE id=$6",
            job.attempts,
            next_run_at,
            error,
            json.dumps(job.progress),
            now_ms,
            job.id,
        )

    async def extend_leases(self, worker: str, until_ms: int, now_ms: int) -> int:
        """The worker is alive: extend the lease of every job it holds."""
        return len(
            await self.db.fetch(
                "UPDATE job SET locked_until=$1, updated_at=$2 WHERE locked_by=$3 AND state='running' RETURNING id",
                until_ms,
                now_ms,
                worker,
            )
        )

    async def holders(self) -> list[str]:
        """Workers that hold a running job."""
        rows = await self.db.fetch("SELECT DISTINCT locked_by FROM job WHERE state='running' AND locked_by IS NOT NULL")
        return [r["locked_by"] for r in rows]

    async def release_held_by(self, worker: str, now_ms: int) -> int:
        """Hand back every job a worker holds (it is known to be dead): due again at once."""
        released = len(
            await self.db.fetch(
                "UPDATE job SET state='queued', locked_by=NULL, locked_until=NULL, updated_at=$1 "
                "WHERE locked_by=$2 AND state='running' RETURNING id",
                now_ms,
                worker,
            )
        )
        if released:
            await self._notify()
        return released

    async def delete_finished_before(self, cutoff_ms: int) -> int:
        """Forget done and failed jobs last touched before the cutoff, except each team's newest
        finished job of each kind (the schedule and ``export before purge`` read those)."""
        keep = "SELECT MAX(id) FROM job k WHERE k.state IN ('done', 'failed') GROUP BY k.team_id, k.kind, k.state"
        return len(
            await self.db.fetch(
                f"DELETE FROM job WHERE state IN ('done', 'failed') AND updated_at < $1 AND id NOT IN ({keep}) RETURNING id",
                cutoff_ms,
            )
        )


CHANNEL = "clutto_jobs"
log = logging.getLogger("clutto.jobs")


class JobNotifications:
    """PostgreSQL ``LISTEN`` on the job queue, so that a job queued by any process (the main
    process, a ``clutto-bridge worker``, an operator's CLI command) is claimed at once by
    whichever process has a free slot, instead of at its next poll (``jobs.poll_interval``).

    One connection of its own (a listening connection cannot go back to a pool). Polling stays
    as the fallback: while the connection is down, the runner finds due jobs at its next poll,
    and this reconnects every ``retry`` seconds.
    """

    def __init__(self, url: str, retry: float = 5.0) -> None:
        self.url = url
        self.retry = retry

    @classmethod
    def for_database(cls, db: Database, url: str) -> JobNotifications | None:
        return None if db.scheme == Scheme.SQLITE else cls(url)

    async def run(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on each notification, until cancelled."""
        warned = False
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.url)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _conn: closed.set())
                await conn.add_listener(CHANNEL, lambda *_args: wake())
                if warned:
                    log.info("Listening for queued jobs again")
                warned = False
                wake()  # something may have been queued while nobody listened
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database is down or restarting: poll until it is back
                if not warned:
                    log.warning(
                        "Not notified of queued jobs (%s); finding them by polling until the database answers", e
                    )
                    warned = True
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(self.retry)
