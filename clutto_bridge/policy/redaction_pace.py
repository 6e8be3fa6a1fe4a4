"""How many redactions to keep in flight: as many as the homeserver sustains.

Each redaction is an event the homeserver must persist; a few requests in flight hide the
round trips, too many only queue inside the homeserver and raise latency. The controller
raises the limit while a window of requests completes without its latency growing, backs
off when latency grows well past the best seen, and halves it on a refusal (429) or a
server error (5xx). Pure: the caller measures and reports; no clock is read here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class RedactionPace:
    limit: int = 8
    floor: int = 1
    ceiling: int = 64
    window: int = 0  # requests per decision; 0: the current limit, at least 8
    latency_growth: float = 2.0  # the median may grow this much over the best before backing off
    best: float | None = None  # the lowest window median seen (seconds per request)
    samples: list[float] = field(default_factory=list)

    def completed(self, seconds: float) -> None:
        """A request finished in ``seconds``; every full window may move the limit."""
        self.samples.append(seconds)
        if len(self.samples) < (self.window or max(8, self.limit)):
            return
        median = statistics.median(self.samples)
        self.samples.clear()
        if self.best is None or median < self.best:
            self.best = median
        if median <= self.best * self.latency_growth:
            self.limit = min(self.ceiling, self.limit + max(1, self.limit // 4))
        else:
            # Latency grows with the limit (Little's law): the homeserver queues instead of
            # working faster. The limit settles where latency is about ``latency_growth``
            # times the best, which keeps the homeserver saturated without a long queue.
            self.limit = max(self.floor, self.limit - max(1, self.limit // 4))

    def refused(self) -> None:
        """The homeserver answered 429 or 5xx: halve, and measure afresh."""
        self.limit = max(self.floor, self.limit // 2)
        self.samples.clear()
