"""How many redactions to keep in flight: as many as raise the homeserver's throughput.

Each redaction is an event the homeserver must persist. More requests in flight hide round
trips and let Synapse persist events in batches, so its throughput grows with concurrency up
to a point; past it, requests only queue and latency grows. The controller climbs: it raises
the limit while a raise pays (5% more throughput or better), steps back when a raise did not,
probes upwards now and then while holding, lowers the limit when throughput at the same limit
falls below 0.8 of the window before in two windows in a row (the homeserver got busier; one
slow window is often just a late batch), and halves it on a refusal (429) or a server error
(5xx), once for the requests in flight at the time.

Throughput is counted, not inferred from latency: completions per second over a window of
twice the limit in completions (at least 8; Synapse completes a batch at a time, and about a
limit's worth is one batch). Latency lags concurrency: right after a change the requests that
finish were sent under the old limit into the old queue (and a sweep's first ones into an
empty one), and judging a raise by them made it look as if it had not paid, so the pace backed
off too early (bench/README.md, "The pace trail"). So after every change of the limit, the
next completions, as many as were allowed in flight before it, settle and are not measured;
the window starts at the completion that ends the settling. A window in which far fewer than
the limit were in flight on average (its summed latencies over its span, Little's law) was
held back by something else (page reads, checkpoints, the rate limiter, a room's end): it is
not judged, and the pace settles afresh. Pure: the caller passes each completion's latency
and monotonic time; no clock is read here."""

from __future__ import annotations

from dataclasses import dataclass

PAYS = 1.05  # a raise that brings less than this much more throughput is not worth its queue
WORSE = 0.8  # throughput at the same limit fell below this: the homeserver is busier, lower
PROBE_EVERY = 4  # windows held before trying one step higher again
FULL = 0.75  # a window with fewer in flight on average than this share of the limit is not judged


@dataclass
class RedactionPace:
    limit: int = 8
    floor: int = 1
    ceiling: int = 64
    window: int = 0  # completions per decision; 0: twice the current limit, at least 8
    settling: int = -1  # completions still to pass before measuring; -1: the first limit (start)
    since: float = 0.0  # monotonic time of the completion that started the window
    count: int = 0  # completions in the window
    busy: float = 0.0  # their latencies added up: over the window's span, the mean in flight
    last: tuple[int, float] | None = None  # (limit, throughput) of the window before
    held: int = 0
    measured: bool = False  # a window was measured since start (the first one raises at once)
    halved: bool = False  # the last change was a refusal's
    doubt: bool = False  # the last window fell below WORSE at the same limit: lower if this one does too

    def __post_init__(self) -> None:
        if self.settling < 0:  # the first requests meet an empty queue: they look fast
            self.settling = self.limit

    def completed(self, seconds: float, at: float) -> None:
        """A request finished at monotonic time ``at`` after ``seconds``; a full window may move the limit."""
        if self.settling > 0:
            self.settling -= 1
            self.since = at
            return
        self.count += 1
        self.busy += seconds
        if self.count < (self.window or max(8, 2 * self.limit)):
            return
        span = max(at - self.since, 1e-6)
        throughput, in_flight = self.count / span, self.busy / span
        self.since, self.count, self.busy = at, 0, 0.0
        if in_flight < FULL * self.limit:  # something else held the requests back: no judgement
            self.settling, self.doubt = self.limit, False
            return
        last = self.last
        if last and last[0] == self.limit and throughput < WORSE * last[1] and not self.doubt:
            self.doubt = True  # one slow window may be noise (a late batch): keep the reference
            return
        self.doubt, self.last = False, (self.limit, throughput)
        if last is None:  # the first window, or the first after a refusal: a reference only
            if not self.measured:
                self._change(self._raised())
            self.measured = True
            return
        last_limit, last_throughput = last
        gain = throughput / last_throughput
        if self.limit > last_limit:  # the window after a raise
            if gain >= PAYS:
                self._change(self._raised())
            else:  # more in flight only queued: go back
                self._change(last_limit)
                self.last = (last_limit, last_throughput)
        elif self.limit == last_limit and gain < WORSE:
            self._change(max(self.floor, self.limit - max(1, self.limit // 4)))
        else:  # holding (or just lowered): try one step higher now and then
            self.held += 1
            if gain >= 1 / WORSE or self.held >= PROBE_EVERY:
                self._change(self._raised())

    def refused(self) -> None:
        """The homeserver answered 429 or 5xx: halve, and measure afresh.

        Refusals come in bursts, one for each request in flight; those sent before the last
        halving answer for the same moment and do not halve again (else one burst drops the
        limit to the floor).
        """
        if self.settling > 0 and self.halved:
            return
        self.halved = True
        self.settling = max(self.settling, self.limit)
        self.limit, self.count, self.busy = max(self.floor, self.limit // 2), 0, 0.0
        self.last, self.held, self.doubt = None, 0, False

    def _raised(self) -> int:
        return min(self.ceiling, self.limit + max(1, self.limit // 2))

    def _change(self, limit: int) -> None:
        """Move to ``limit``; the requests in flight under the old one settle before measuring."""
        self.held, self.doubt = 0, False
        if limit == self.limit:
            return
        self.settling, self.halved = max(self.settling, self.limit), False
        self.limit, self.count, self.busy = limit, 0, 0.0
