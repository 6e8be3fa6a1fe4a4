"""The job runner on a real database (SQLite and PostgreSQL): claims, retries, hand-back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mautrix.errors import MatrixUnknownRequestError

from clutto_bridge.clock import SystemClock
from clutto_bridge.config import JobSettings
from clutto_bridge.db import create_database
from clutto_bridge.db.job import JobKind, JobState, JobStore
from clutto_bridge.jobs.runner import JobContext, JobRunner
from tests.integration.conftest import Homeserver

SETTINGS = JobSettings(
    poll_interval=1,
    lease=30,
    max_attempts=3,
    retry_backoff=60,
    homeserver_rate=100,
    concurrency=2,
    keep_finished=3600,
)
CLOCK = SystemClock()
_now = CLOCK.now_ms


@pytest.fixture
async def store(homeserver: Homeserver, database_url: str, tmp_path: Path) -> JobStore:
    settings = homeserver.bridge_settings(tmp_path, database_url)
    db = create_database(settings.appservice.database, settings.appservice.database_opts)
    await db.start()
    yield JobStore(db)
    await db.stop()


async def test_concurrent_workers_claim_each_job_once(store: JobStore) -> None:
    ids = {(await store.add("work", f"team{i}", {}, _now())).id for i in range(30)}

    async def worker(name: str) -> list[int]:
        claimed = []
        while (job := await store.claim(name, _now(), 30_000)) is not None:
            claimed.append(job.id)
            await asyncio.sleep(0)
        return claimed

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    flat = [job_id for claimed in results for job_id in claimed]
    assert sorted(flat) == sorted(ids)  # every job once, none twice


async def test_expired_lease_lets_another_worker_resume(store: JobStore) -> None:
    start = _now()  # one reading: a loaded machine between calls must not move the lease's end
    job = await store.add("work", "t", {}, start)
    first = await store.claim("crashed", start, 1_000)
    assert first.id == job.id
    assert await store.claim("other", start + 500, 30_000) is None  # lease still held then
    taken = await store.claim("other", start + 1_005, 30_000)
    assert taken.id == job.id and taken.locked_by == "other"
    first.progress["done"] = 1
    assert not await store.checkpoint(first, "crashed", start + 1_010, 30_000)  # the old worker lost it


async def test_homeserver_errors_are_retried_with_backoff_then_fail(store: JobStore) -> None:
    runner = JobRunner(store=store, settings=SETTINGS, clock=CLOCK)
    calls = []

    async def flaky(ctx: JobContext) -> None:
        calls.append(ctx.job.attempts)
        await ctx.checkpoint(step=len(calls))
        raise MatrixUnknownRequestError(502, "bad gateway", "M_UNKNOWN", "bad gateway")

    runner.register("flaky", flaky)
    job = await runner.enqueue("flaky", "t")
    for expected_attempts in (1, 2):
        claimed = await store.claim(runner.worker, _now() + 10**9, runner.lease_ms)
        await runner.run(claimed)
        again = await store.get(job.id)
        assert again.state == "queued" and again.attempts == expected_attempts
        assert again.next_run_at >= _now() + 60_000 * 2 ** (expected_attempts - 1) - 5_000
        assert again.progress["step"] == expected_attempts  # progress kept for the retry
    claimed = await store.claim(runner.worker, _now() + 10**9, runner.lease_ms)
    await runner.run(claimed)
    final = await store.get(job.id)
    assert final.state == "failed" and "bad gateway" in final.error


async def test_a_stopping_worker_hands_its_job_back(store: JobStore) -> None:
    runner = JobRunner(store=store, settings=SETTINGS, clock=CLOCK)
    started = asyncio.Event()

    async def slow(ctx: JobContext) -> None:
        await ctx.checkpoint(step=1)
        started.set()
        await asyncio.Event().wait()

    runner.register("slow", slow)
    job = await runner.enqueue("slow", "t")
    runner.start()
    await asyncio.wait_for(started.wait(), 10)
    await runner.stop()
    handed_back = await store.get(job.id)
    assert handed_back.state == "queued" and handed_back.locked_by is None
    assert handed_back.attempts == 0 and handed_back.progress == {"step": 1}


async def test_latest_finds_a_teams_sweeps_behind_many_exports(store: JobStore) -> None:
    sweep = await store.add(JobKind.SWEEP, "t", {}, _now())
    for _ in range(25):
        await store.add(JobKind.EXPORT, "t", {}, _now())
    await store.add(JobKind.SWEEP, "other team", {}, _now())
    assert [job.id for job in await store.latest("t", JobKind.SWEEP)] == [sweep.id]


async def test_a_long_job_does_not_hold_the_others(store: JobStore) -> None:
    runner = JobRunner(store=store, settings=SETTINGS, clock=CLOCK)
    long_started, release = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext) -> None:
        long_started.set()
        await release.wait()

    async def short(ctx: JobContext) -> None:
        await ctx.checkpoint(done=True)

    runner.register(JobKind.SWEEP, long)
    runner.register(JobKind.EXPORT, short)
    sweep = await runner.enqueue(JobKind.SWEEP, "t1")
    runner.start()
    try:
        await asyncio.wait_for(long_started.wait(), 10)
        export = await runner.enqueue(JobKind.EXPORT, "t2")
        finished = await runner.wait(export.id, 10)
        assert finished.state == JobState.DONE and finished.progress == {"done": True}
        assert (await store.get(sweep.id)).state == JobState.RUNNING  # still running beside it
        release.set()
        assert (await runner.wait(sweep.id, 10)).state == JobState.DONE
    finally:
        await runner.stop()


async def test_old_finished_jobs_are_deleted_but_the_newest_of_each_kind_stays(store: JobStore) -> None:
    old = []
    for _ in range(3):
        job = await store.add(JobKind.SWEEP, "t", {}, _now())
        await store.finish(job, JobState.DONE, _now() - 7_200_000)
        old.append(job.id)
    newest_old = old.pop()  # the newest finished sweep of the team is kept, however old
    queued = await store.add(JobKind.EXPORT, "t", {}, _now())
    assert await store.delete_finished_before(_now() - 3_600_000) == 2
    assert [await store.get(job_id) for job_id in old] == [None, None]
    assert (await store.get(newest_old)).state == JobState.DONE
    assert (await store.get(queued.id)).state == JobState.QUEUED  # unfinished work is never deleted


async def test_a_restarted_bridge_takes_back_the_jobs_of_its_dead_predecessor_at_once(store: JobStore) -> None:
    import socket
    import subprocess

    from clutto_bridge.jobs.runner import worker_name

    dead = subprocess.Popen(["true"])
    dead.wait()  # a process of this host that no longer exists
    job = await store.add(JobKind.SWEEP, "t", {}, _now())
    held = await store.claim(worker_name(socket.gethostname(), dead.pid), _now(), 3_600_000)
    elsewhere = await store.add(JobKind.EXPORT, "t", {}, _now())
    await store.claim(worker_name("another-host", dead.pid), _now(), 3_600_000)
    assert held.id == job.id
    runner = JobRunner(store=store, settings=SETTINGS, clock=CLOCK)
    assert await runner.take_back_from_dead_local_workers() == 1
    taken = await store.get(job.id)
    assert taken.state == JobState.QUEUED and taken.locked_by is None  # due again now, not in an hour
    assert (await store.get(elsewhere.id)).state == JobState.RUNNING  # another host's lease is its own


async def test_the_heartbeat_keeps_a_long_step_from_losing_its_lease(store: JobStore) -> None:
    settings = SETTINGS.model_copy(update={"lease": 2})
    runner = JobRunner(store=store, settings=settings, clock=CLOCK)
    started, release = asyncio.Event(), asyncio.Event()

    async def long_step(ctx: JobContext) -> None:
        started.set()
        await release.wait()  # no checkpoint for longer than the lease
        await ctx.checkpoint(done=True)

    runner.register(JobKind.SWEEP, long_step)
    job = await runner.enqueue(JobKind.SWEEP, "t")
    runner.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        deadline = asyncio.get_running_loop().time() + 5
        while asyncio.get_running_loop().time() < deadline:  # past two full leases
            assert await store.claim("intruder", _now(), 2_000) is None
            await asyncio.sleep(0.25)
        release.set()
        assert (await runner.wait(job.id, 10)).state == JobState.DONE
    finally:
        await runner.stop()
