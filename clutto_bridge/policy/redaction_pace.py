"""How many redactions to keep in flight: as many as raise the homeserver's throughput.

Each redaction is an event the homeserver must persist. More requests in flight hide round
trips and let Synapse persist events in batches, so its throughput grows with concurrency up
to a point; past it, requests only queue and latency grows. Throughput follows from each
window's median latency (Little's law: in flight / latency), so the controller climbs: it
raises the limit while a raise pays (5% more throughput or better), steps back when a raise
did not, probes upwards now and then while holding, lowers the limit when throughput falls
at the same limit (the homeserver got busier), and halves it on a refusal (429) or a
server error (5xx). Pure: the caller measures and reports; no clock is read here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

PAYS = 1.05  # a raise that brings less than this much more throughput is not worth its queue
WORSE = 0.8  # throughput at the same limit fell below this: the homeserver is busier, lower
PROBE_EVERY = 4  # windows held before trying one step higher again


@dataclass
class RedactionPace:
    limit: int = 8
    floor: int = 1
    ceiling: int = 64
    window: int = 0  # requests per decision; 0: the current limit, at least 8
    samples: list[float] = field(default_factory=list)
    last: tuple[int, float] | None = None  # (limit, throughput) of the window before
    held: int = 0
    measured: bool = False  # a window was measured since start (the first one raises at once)

    def completed(self, seconds: float) -> None:
        """A request finished in ``seconds``; every full window may move the limit."""
        self.samples.append(seconds)
        if len(self.samples) < (self.window or max(8, self.limit)):
            return
        median = max(statistics.median(self.samples), 1e-6)
        self.samples.clear()
        throughput = self.limit / median
        last, self.last = self.last, (self.limit, throughput)
        if last is None:  # the first window, or the first after a refusal: a reference only
            if not self.measured:
                self._raise()
            self.measured = True
            return
        last_limit, last_throughput = last
        gain = throughput / last_throughput
        if self.limit > last_limit:  # the window after a raise
            if gain >= PAYS:
                self._raise()
            else:  # more in flight only queued: go back
                self.limit, self.last = last_limit, (last_limit, last_throughput)
        elif self.limit == last_limit and gain < WORSE:
            self._lower()
        else:  # holding (or just lowered): try one step higher now and then
            self.held += 1
            if gain >= 1 / WORSE or self.held >= PROBE_EVERY:
                self._raise()

    def _raise(self) -> None:
        self.held = 0
        self.limit = min(self.ceiling, self.limit + max(1, self.limit // 2))

    def _lower(self) -> None:
        self.held = 0
        self.limit = max(self.floor, self.limit - max(1, self.limit // 4))

    def refused(self) -> None:
        """The homeserver answered 429 or 5xx: halve, and measure afresh."""
        self.limit = max(self.floor, self.limit // 2)
        self.samples.clear()
        self.last = None
        self.held = 0
