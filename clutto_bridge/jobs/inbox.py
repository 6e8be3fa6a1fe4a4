"""The work of received events: the durable inbox handled in room lanes, and every task of it in flight.

The appservice (``matrix/appservice.py``) acknowledges a transaction only once ``receive``
returned: its new events are then in the inbox (``db/inbox.py``), written in one database
transaction. Nothing that waits on the homeserver (a join, a reply, a retry) runs before the
acknowledgement: every event is handled afterwards, in its room's lane, and marked done; what
a stop or crash left unfinished is handled again on the next start.

Exactly once: the event id is the key, not the transaction id. Synapse numbers transactions
from the highest one it still keeps, so after a clean restart (SQLite) it sends ids the
bridge saw before, with new events in them. A transaction whose events are all in the inbox
is a retry and is acknowledged without handling anything again; one with new events has
those handled. Its device parts (to-device messages, key counts) carry no event id: they are
handed on every time (Synapse's retries carry none of them, and a repeated to-device message
is refused by Olm itself).

Order: the events of one room are handled in the order they arrived, each after the room's
queued work; rooms do not wait for each other. An event whose handler hands back work (a
bot command) finishes that work in its lane before the room's next event.

One owner: ``InboxWork`` holds every task of this work, the lanes' and the background tasks
event handling starts outside them (a welcome, a profile update), so a stop drains them
all at once and ``in_flight`` counts them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from clutto_bridge import testhooks
from clutto_bridge.db.inbox import Inbox, InboxEntry

log = logging.getLogger("clutto.inbox")

# An entry whose handling was interrupted this often (it may be what crashes the bridge) is
# given up, with an error in the log, instead of being tried on every start.
MAX_ATTEMPTS = 3
# The lane of what a transaction carries besides room events (to-device messages, key counts).
DEVICE_LANE = ""

# Turns a stored event into the event handlers' calls; the work they hand back, if any.
EventHandler = Callable[[dict[str, Any]], Awaitable[Awaitable[object] | None]]


class InboxWork:
    def __init__(self, inbox: Inbox, now_ms: Callable[[], int]) -> None:
        self.inbox = inbox
        self.now_ms = now_ms
        # The newest queued work of each room with work in progress (see the module docstring).
        self.lanes: dict[str, asyncio.Task] = {}
        # Every task in flight: the lanes' and the background ones.
        self.tasks: set[asyncio.Task] = set()
        self._handle: EventHandler | None = None
        self._open = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self.tasks)

    async def receive(
        self, txn_id: str, events: list[dict[str, Any]], device_work: Awaitable[object] | None
    ) -> Callable[[], None] | None:
        """Keep the transaction's new events and queue them, and ``device_work`` in the device
        lane; raises when they cannot be kept (the transaction is then not acknowledged). What
        it returns runs once the acknowledgement is sent (only a crash test's hook)."""
        entries = await self.inbox.accept(txn_id, events, self.now_ms())
        if events and not entries:
            log.debug("Transaction %s holds only events already received: a retry", txn_id)
        for entry in entries:
            self._queue(entry.room_id, entry)
        if device_work is not None:
            self._queue(DEVICE_LANE, None, device_work)
        if testhooks.armed("EXIT_AFTER_ACK", _bodies(events)):  # acknowledged, then gone (as kill -9)
            self._open.clear()  # no queued work starts: the crash comes before its first step
            return lambda: testhooks.exit_now("EXIT_AFTER_ACK")
        return None

    async def resume(self) -> int:
        """Queue what the last stop or crash left unhandled, ahead of anything new in the same
        rooms. It runs once ``open`` is called (when the bridge is ready)."""
        entries = await self.inbox.unfinished()
        given_up = [e.id for e in entries if e.attempts > MAX_ATTEMPTS]
        for entry in entries:
            if entry.attempts > MAX_ATTEMPTS:
                log.error(
                    "Giving up event %s in %s: its handling was interrupted %d times",
                    entry.event.get("event_id"),
                    entry.room_id,
                    entry.attempts - 1,
                )
            else:
                self._queue(entry.room_id, entry)
        await self.inbox.done(given_up, self.now_ms())
        return len(entries) - len(given_up)

    def open(self, handle: EventHandler) -> None:
        """Start handling queued events with ``handle`` (the bridge is ready)."""
        self._handle = handle
        self._open.set()

    def start(self, work: Coroutine[Any, Any, object]) -> None:
        """Run ``work`` in the background, in no lane; a failure is logged."""
        self._track(asyncio.create_task(work)).add_done_callback(_log_failure)

    async def drain(self, timeout: float) -> None:
        """Let work in flight finish for ``timeout`` seconds (on shutdown), then cancel the rest,
        and wait for it, so nothing touches the database once it is closed. Cancelled events stay
        unfinished in the inbox for the next start. Work that never started (the bridge stopped
        before it was ready) is cancelled at once."""
        if not self._open.is_set():
            timeout = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Work in flight may start more (an event's handling, a welcome): wait for that too.
        while (running := [task for task in self.tasks if not task.done()]) and (left := deadline - loop.time()) > 0:
            await asyncio.wait(running, timeout=left)
        leftover = [task for task in self.tasks if not task.done()]
        if leftover:
            log.warning("Cancelling %d task(s) of event handling still running after %.0fs", len(leftover), timeout)
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

    def _track(self, task: asyncio.Task) -> asyncio.Task:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _queue(self, lane: str, entry: InboxEntry | None, work: Awaitable[object] | None = None) -> None:
        """Handle ``entry`` (or run ``work``) after the lane's queued work."""
        task = self._track(asyncio.create_task(self._in_lane(self.lanes.get(lane), entry, work)))
        self.lanes[lane] = task

        def finished(done: asyncio.Task) -> None:
            if self.lanes.get(lane) is done:
                del self.lanes[lane]

        task.add_done_callback(finished)

    async def _in_lane(
        self, previous: asyncio.Task | None, entry: InboxEntry | None, work: Awaitable[object] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._open.wait()
        assert self._handle is not None  # set by open
        try:
            if entry is not None:
                work = await self._handle(entry.event)
            if work is not None:
                await work
        except Exception:
            about = (
                f"event {entry.event.get('event_id')} in {entry.room_id}"
                if entry
                else "the device parts of a transaction"
            )
            log.exception("Handling %s failed", about)
        if entry is not None:
            await self.inbox.done([entry.id], self.now_ms())


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Background handling failed", exc_info=task.exception())


def _bodies(events: list[dict[str, Any]]) -> str:
    """The message bodies among ``events`` (what the crash test's hook looks at)."""
    texts = []
    for event in events:
        content = event.get("content")
        if event.get("type") == "m.room.message" and isinstance(content, dict) and isinstance(content.get("body"), str):
            texts.append(content["body"])
    return "\n".join(texts)
