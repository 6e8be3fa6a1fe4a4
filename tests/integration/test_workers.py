"""Job workers scale out: `clutto-bridge worker` processes share the job queue with the main
process on PostgreSQL, and every job runs exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clutto_bridge.config import ConfigFile
from clutto_bridge.db.job import JobKind, JobState
from tests.conftest import config_with_tokens
from tests.integration.conftest import Bridges, unique
from tests.integration.matrix_client import wait_until

TEAMS = 8


def _worker_config(folder: Path) -> Path:
    """The main process's config, with a short poll interval so the workers find due jobs first."""
    path = folder / "worker.yaml"
    path.write_text((folder / "config.yaml").read_text())
    file = ConfigFile(path)
    file.load()
    file["jobs.poll_interval"] = "1s"
    file.save()
    return path


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_workers_and_the_main_process_run_every_job_once(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start(bridges.settings(jobs__poll_interval="60s"))
    owner = await new_user("owner")
    teams = [await bridge.teams.create(unique(f"Scale {i}"), owner=owner.user_id) for i in range(TEAMS)]
    config = _worker_config(bridges.folder)
    logs = [bridges.folder / f"worker-{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "clutto_bridge", "worker", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),
        )
        for log in logs
    ]
    try:

        async def ready() -> bool:
            for worker, log in zip(workers, logs):
                if worker.poll() is not None:
                    raise AssertionError(f"a worker exited: {log.read_text()[-2000:]}")
            return all("Job worker" in log.read_text() for log in logs)

        await wait_until(ready, 60, "both workers to be ready")
        due = bridge.clock.now_ms() + 1500  # after the main process went back to sleep
        jobs = [await bridge.runner.enqueue(JobKind.SWEEP, t.id, {"requested_by": None}, run_at=due) for t in teams]

        async def all_done() -> bool:
            states = [(await bridge.runner.store.get(job.id)).state for job in jobs]
            return states == [JobState.DONE] * len(jobs)

        await wait_until(all_done, 120, "every sweep to be done")
        ran = [[int(n) for n in re.findall(r"Running job (\d+) ", log.read_text())] for log in logs]
        runs = sorted(n for worker_runs in ran for n in worker_runs)
        assert runs == sorted(job.id for job in jobs), ran  # each job once, all by the workers
        for team in teams:
            assert len(await bridge.audit.for_team(team.id, "retention_sweep")) == 1
        print(f"jobs per worker: {[len(r) for r in ran]}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(worker.wait, 30) for worker in workers]
    assert codes == [0, 0]  # a stopped worker hands back and exits cleanly


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_worker_hears_of_a_queued_job_at_once_not_at_its_next_poll(bridges: Bridges, new_user) -> None:
    """PostgreSQL LISTEN/NOTIFY: a job queued by another process is claimed long before the
    worker's 60 s poll would have found it."""
    bridge = await bridges.start(bridges.settings(jobs__poll_interval="60s"))
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Notified"), owner=owner.user_id)
    await bridge.runner.stop()  # the main process runs no job here: only the worker can take it
    config = _worker_config(bridges.folder)
    file = ConfigFile(config)
    file.load()
    file["jobs.poll_interval"] = "60s"
    file.save()
    log = bridges.folder / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "worker", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )
    try:

        async def ready() -> bool:
            if worker.poll() is not None:
                raise AssertionError(f"the worker exited: {log.read_text()[-2000:]}")
            return "Job worker" in log.read_text()

        await wait_until(ready, 60, "the worker to be ready")
        # As an operator's command in a third process would: a row in the queue, nothing else.
        job = await bridge.runner.store.add(str(JobKind.SWEEP), team.id, {"requested_by": None}, bridge.clock.now_ms())

        async def done() -> bool:
            return (await bridge.runner.store.get(job.id)).state == JobState.DONE

        await wait_until(done, 30, "the worker to run the job it was notified of")
        assert f"Running job {job.id} " in log.read_text()
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0


def test_a_worker_needs_postgresql(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config_with_tokens(config)
    result = subprocess.run(
        [sys.executable, "-m", "clutto_bridge", "worker", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2 and ": appservice.database: a worker shares the job queue" in result.stderr
