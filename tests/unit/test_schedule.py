"""The periodic tasks: each on its own interval in its own loop, with time moved by the test.

``ManualTime`` stands in for ``asyncio.sleep``: a loop's sleep ends only when the test moves
time past it, so what ran when is decided by the test, never by the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from clutto_bridge.config import validate
from clutto_bridge.jobs.schedule import HOUR, Periodic, Schedule, periodic_jobs
from tests.unit.test_config import with_value


class ManualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeping: list[tuple[float, asyncio.Future]] = []

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self.sleeping.append((self.now + seconds, future))
        try:
            await future
        finally:
            self.sleeping = [(due, f) for due, f in self.sleeping if f is not future]

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, future in self.sleeping:
            if due <= self.now and not future.done():
                future.set_result(None)


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Let the loops run until ``condition`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


class Counting:
    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    def task(self, name: str, *, fails: bool = False):
        async def run() -> None:
            self.runs[name] = self.runs.get(name, 0) + 1
            if fails:
                raise RuntimeError(f"{name} broke")

        return run


async def test_each_task_runs_on_its_own_interval_and_a_failure_stops_only_its_own_run() -> None:
    clock, count = ManualTime(), Counting()
    schedule = Schedule(
        [
            Periodic("often", 10, count.task("often")),
            Periodic("rarely", 25, count.task("rarely", fails=True)),
            Periodic("later", 10, count.task("later"), at_start=False),
        ],
        sleep=clock.sleep,
    )
    schedule.start()
    try:
        expected = [
            (0, {"often": 1, "rarely": 1}),  # at start, except the one that waits one interval
            (10, {"often": 2, "rarely": 1, "later": 1}),
            (10, {"often": 3, "rarely": 1, "later": 2}),
            (5, {"often": 3, "rarely": 2, "later": 2}),  # failed at start, ran again after its interval
        ]
        for step, runs in expected:
            clock.advance(step)
            await until(lambda: count.runs == runs and len(clock.sleeping) == 3, f"{runs} at {clock.now}s")
        assert schedule.running
    finally:
        await schedule.stop()


async def test_stop_cancels_a_running_task_and_waits_for_it() -> None:
    clock, started, cancelled = ManualTime(), asyncio.Event(), []

    async def slow() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("slow")
            raise

    schedule = Schedule([Periodic("slow", 60, slow), Periodic("idle", 60, Counting().task("idle"))], sleep=clock.sleep)
    schedule.start()
    await until(started.is_set, "the slow task to start")
    await schedule.stop()
    assert cancelled == ["slow"] and not schedule.running and clock.sleeping == []


def test_tasks_need_distinct_names_and_an_interval() -> None:
    async def nothing() -> None: ...

    with pytest.raises(ValueError, match="distinct names"):
        Schedule([Periodic("a", 1, nothing), Periodic("a", 2, nothing)])
    with pytest.raises(ValueError, match="above zero"):
        Schedule([Periodic("a", 0, nothing)])


def test_the_bridge_declares_one_task_per_job_with_the_interval_of_its_setting() -> None:
    data = with_value("policy.retention.sweep_interval", "10m")
    data["audit"]["checkpoint_interval"] = "1m"
    data["policy"]["reminder_interval"] = "7d"
    data["appservice"]["ping_interval"] = "30s"
    settings = validate(data)
    services = SimpleNamespace(announce=None, remind_due=None, check=None, forget_expired=None, checkpoint=None)
    jobs = periodic_jobs(
        settings,
        teams=None,
        jobs=None,
        runner=None,
        onboarding=services,
        lifecycle=services,
        access=services,
        audit=services,
        reach=services,
    )
    intervals = {job.name: (job.interval, job.at_start) for job in jobs}
    assert intervals == {
        "homeserver ping": (30, True),
        "policy announcement": (HOUR, True),
        "retention sweeps": (600, True),
        "trial lifecycle": (HOUR, True),
        "consent reminders": (HOUR, True),
        "request records": (HOUR, True),
        "audit checkpoint": (60, False),
    }
