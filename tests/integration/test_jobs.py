"""The job runner on a real database (SQLite and PostgreSQL): claims, retries, hand-back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mautrix.errors import MatrixUnknownRequestError

from clutto_bridge.config import JobSettings
from clutto_bridge.db import create_database
from clutto_bridge.db.job import JobStore
from clutto_bridge.jobs.runner import JobContext, JobRunner, _now
from tests.integration.conftest import Homeserver

SETTINGS = JobSettings(poll_interval=1, lease=30, max_attempts=3, retry_backoff=60, homeserver_rate=100)


@pytest.fixture
async def store(homeserver: Homeserver, database_url: str, tmp_path: Path) -> JobStore:
    settings = homeserver.bridge_settings(tmp_path, database_url)
    db = create_database(settings.appservice)
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
    job = await store.add("work", "t", {}, _now())
    first = await store.claim("crashed", _now(), 1)
    assert first.id == job.id
    assert await store.claim("other", _now() - 10, 30_000) is None  # lease still held then
    taken = await store.claim("other", _now() + 5, 30_000)
    assert taken.id == job.id and taken.locked_by == "other"
    first.progress["done"] = 1
    assert not await store.checkpoint(first, "crashed", _now(), 30_000)  # the old worker lost it


async def test_homeserver_errors_are_retried_with_backoff_then_fail(store: JobStore) -> None:
    runner = JobRunner(store, SETTINGS)
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
    runner = JobRunner(store, SETTINGS)
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
