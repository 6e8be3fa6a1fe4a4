"""jobs/reach.py: the gauge follows every answer; the log speaks at the first and at each change."""

from __future__ import annotations

import logging

import pytest

from clutto_bridge.jobs.reach import HomeserverReach
from clutto_bridge.matrix.appservice import Reach
from clutto_bridge.metrics import Metrics


class Answers:
    """The homeserver's answers to the ping, one per check (an exception: it did not answer)."""

    def __init__(self, *answers: Reach | Exception) -> None:
        self.answers = list(answers)

    async def ask_to_be_pinged(self) -> Reach:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _gauge(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("clutto_homeserver_reaches_bridge")
    assert value is not None
    return value


async def test_the_log_speaks_at_the_first_answer_and_at_each_change(caplog: pytest.LogCaptureFixture) -> None:
    up, down = Reach(True, "3 ms there and back"), Reach(False, "it could not connect (M_CONNECTION_FAILED 502)")
    metrics = Metrics()
    reach = HomeserverReach(appservice=Answers(up, up, down, down, up, OSError("refused")), metrics=metrics)
    assert _gauge(metrics) == -1  # not asked yet
    said, gauges = [], []
    for _ in range(6):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="clutto.reach"):
            await reach.check()
        said.append([(r.levelname, r.getMessage().split(":")[0].split(" (")[0]) for r in caplog.records])
        gauges.append(_gauge(metrics))
    assert said == [
        [("INFO", "The homeserver reaches the bridge")],
        [],
        [("WARNING", "THE HOMESERVER CANNOT REACH THE BRIDGE")],
        [],
        [("INFO", "The homeserver reaches the bridge again")],
        [("WARNING", "Could not check whether the homeserver reaches the bridge")],
    ]
    assert gauges == [1, 1, 0, 0, 1, -1]
