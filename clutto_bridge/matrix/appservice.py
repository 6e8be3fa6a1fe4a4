"""mautrix's AppService, with a durable inbox of received events in the bridge database.

mautrix keeps applied transaction ids in memory only and answers 200 even when handling
failed. Here the events of a transaction are written to the inbox in the same database
transaction that records its id, and only then is the transaction acknowledged; a failed
write answers 500, so the homeserver retries. Each event is handled from the inbox and
marked done; what a stop or crash left unfinished is handled again on the next start.

Order: the events of one room are handled in the order they arrived. An event whose
handler hands back work (a bot command) finishes that work in its room's lane, a task, so a
slow command does not hold up the stream; while a room has a lane, later events of that
room queue behind it. Rooms do not wait for each other.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import ssl
from typing import Any, Awaitable, Callable, Protocol, Sequence

import aiohttp
from aiohttp import web
from mautrix.appservice import AppService, AppServiceAPI
from mautrix.types.util import SerializerError
from mautrix.types import JSON, Event, EventType

from clutto_bridge import testhooks
from clutto_bridge.json_bodies import RefusedJson, parse_json

# Homeserver transactions are small; a body beyond these bounds is refused before parsing
# reaches mautrix (which assumes a well-formed body and answers 500 otherwise).
MAX_BODY_BYTES = 16 * 1024 * 1024
_EVENT_LISTS = ("events", "ephemeral", "de.sorunome.msc2409.ephemeral", "to_device", "de.sorunome.msc2409.to_device")
# An entry whose handling was interrupted this often (it may be what crashes the bridge) is
# given up, with an error in the log, instead of being tried on every start.
MAX_ATTEMPTS = 3


class InboxEntry(Protocol):
    id: int
    room_id: str
    event: dict[str, Any]
    attempts: int


class EventInbox(Protocol):
    """Where received events wait until handled (the bridge database's ``Inbox``)."""

    async def accept(self, txn_id: str, events: list[dict[str, Any]], now_ms: int) -> Sequence[InboxEntry] | None: ...

    async def done(self, entry_ids: list[int], now_ms: int) -> None: ...

    async def unfinished(self) -> Sequence[InboxEntry]: ...


class CluttoAppService(AppService):
    def __init__(self, *args: Any, inbox: EventInbox, now_ms: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox = inbox
        self.now_ms = now_ms
        self.synchronous_handlers = True
        # The newest queued work of each room with work in progress (see the module docstring).
        self.lanes: dict[str, asyncio.Task] = {}
        self._lanes_open = asyncio.Event()
        self._unrecorded: set[str] = set()
        self._exit_after_ack: set[str] = set()
        # Options of the AppRunner serving the port (the bridge's access logger, for one).
        self.runner_options: dict[str, Any] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 8080) -> None:
        """mautrix's start, with ``runner_options`` given to the AppRunner (mautrix gives none,
        so aiohttp's own access logger, which writes full client addresses, would run)."""
        await self.start_client_only()
        ssl_ctx = None
        if self.tls_cert and self.tls_key:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(self.tls_cert, self.tls_key)
        self.runner = web.AppRunner(self.app, **self.runner_options)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port, ssl_context=ssl_ctx).start()

    async def _http_handle_transaction(self, request: web.Request) -> web.Response:
        if self._check_token(request):
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise _bad("M_BAD_JSON", "A transaction body is a JSON object.")
            if not isinstance(body.get("events"), list):
                raise _bad("M_BAD_JSON", "A transaction body has an events list.")
            for key in _EVENT_LISTS:
                value = body.get(key)
                if value is not None and not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
                    raise _bad("M_BAD_JSON", f"{key} must be a list of event objects.")
        txn_id = request.match_info.get("transaction_id", "")
        response = await super()._http_handle_transaction(request)
        if txn_id in self._unrecorded:
            # The inbox could not be written: not acknowledged, so the homeserver sends it again.
            self._unrecorded.discard(txn_id)
            self.transactions.discard(txn_id)
            return web.json_response({"errcode": "M_UNKNOWN", "error": "The transaction could not be stored."}, status=500)
        if txn_id in self._exit_after_ack:  # test hook: acknowledged, then gone (as kill -9)
            await response.prepare(request)
            await response.write_eof()
            testhooks.exit_now("EXIT_AFTER_ACK")
        return response

    async def _http_ping(self, request: web.Request) -> web.Response:
        if self._check_token(request) and not isinstance(await _json_body(request), dict):
            raise _bad("M_BAD_JSON", "A ping body is a JSON object.")
        return await super()._http_ping(request)

    async def start_client_only(self) -> None:
        """The bot's side of the appservice without the HTTP listener: for a job worker, which
        acts on the homeserver but receives no transactions (mautrix's ``start`` does both)."""
        await self.state_store.open()
        tls = {"ssl": False} if self.server.startswith("https://") and not self.verify_ssl else {}
        self._http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit, **tls),
            headers={"User-Agent": self.default_ua},
        )
        self._intent = AppServiceAPI(
            base_url=self.server, bot_mxid=self.bot_mxid, log=self.log, token=self.as_token,
            state_store=self.state_store, bridge_name=self.bridge_name, client_session=self._http_session,
            default_retry_count=self.default_http_retry_count,
        ).bot_intent()
        self.runner = None

    async def handle_transaction(self, txn_id: str, *, events: list[JSON], **kwargs: Any) -> JSON:
        try:
            entries = await self.inbox.accept(txn_id, events, self.now_ms())
        except Exception:
            self._unrecorded.add(txn_id)
            raise
        if entries is None:
            self.log.debug("Transaction %s was already received, not handling it again", txn_id)
            return {}
        if testhooks.armed("EXIT_AFTER_ACK", _bodies(events)):
            self._lanes_open.clear()  # no queued work starts: the crash comes before its first step
            self._exit_after_ack.add(txn_id)
        await super().handle_transaction(txn_id, events=[], **kwargs)  # ephemeral and to-device
        finished = []
        for entry in entries:
            if entry.room_id in self.lanes:
                self._queue(entry)
                continue
            work = await self._handle(entry)
            if work is None:
                finished.append(entry.id)
            else:
                self._queue(entry, work)
        await self.inbox.done(finished, self.now_ms())
        return {}

    async def resume_inbox(self) -> int:
        """Queue what the last stop or crash left unhandled, ahead of anything new in the same
        rooms. It runs once ``open_inbox`` is called (when the bridge is ready)."""
        entries = await self.inbox.unfinished()
        given_up = [e.id for e in entries if e.attempts > MAX_ATTEMPTS]
        for entry in entries:
            if entry.attempts > MAX_ATTEMPTS:
                self.log.error(
                    "Giving up event %s in %s: its handling was interrupted %d times",
                    entry.event.get("event_id"), entry.room_id, entry.attempts - 1,
                )
            else:
                self._queue(entry)
        await self.inbox.done(given_up, self.now_ms())
        return len(entries) - len(given_up)

    def open_inbox(self) -> None:
        self._lanes_open.set()

    async def drain(self, timeout: float) -> None:
        """Let queued work finish for ``timeout`` seconds (on shutdown), then cancel the rest,
        which stays unfinished in the inbox for the next start. Work that never started (the
        bridge stopped before it was ready) is cancelled at once."""
        if not self._lanes_open.is_set():
            timeout = 0
        running = list(self.lanes.values())
        if running and timeout:
            await asyncio.wait(running, timeout=timeout)
        leftover = [task for task in self.lanes.values() if not task.done()]
        if leftover:
            self.log.warning("Cancelling the work of %d room(s) still running after %.0fs", len(leftover), timeout)
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

    def _queue(self, entry: InboxEntry, work: Awaitable | None = None) -> None:
        """Run ``work`` (or, for an entry not handled yet, its handling) after the room's queued work."""
        room_id = entry.room_id
        task = asyncio.create_task(self._in_lane(self.lanes.get(room_id), entry, work))
        self.lanes[room_id] = task

        def finished(done: asyncio.Task) -> None:
            if self.lanes.get(room_id) is done:
                del self.lanes[room_id]

        task.add_done_callback(finished)

    async def _in_lane(self, previous: asyncio.Task | None, entry: InboxEntry, work: Awaitable | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._lanes_open.wait()
        try:
            if work is None:
                work = await self._handle(entry)
            if work is not None:
                await work
        except Exception:
            self.log.exception("Handling event %s in %s failed", entry.event.get("event_id"), entry.room_id)
        await self.inbox.done([entry.id], self.now_ms())

    async def _handle(self, entry: InboxEntry) -> Awaitable | None:
        """Run every handler on the entry's event; the work they hand back, if any, as one awaitable."""
        raw = entry.event
        try:
            self._fix_prev_content(raw)
            event = Event.deserialize(raw)
        except SerializerError:
            self.log.exception("Failed to deserialize event %s", raw.get("event_id"))
            return None
        cls = EventType.Class.STATE if getattr(event, "state_key", None) is not None else EventType.Class.MESSAGE
        event.type = event.type.with_class(cls)
        later = []
        for handler in self.event_handlers:
            try:
                result = await handler(event)
            except Exception:
                self.log.exception("Exception in Matrix event handler")
                continue
            if inspect.isawaitable(result):
                later.append(result)
        if not later:
            return None
        return asyncio.gather(*later) if len(later) > 1 else later[0]


def _bodies(events: list[JSON]) -> str:
    """The message bodies among ``events`` (what the test hook looks at)."""
    texts = []
    for event in events:
        content = event.get("content")
        if event.get("type") == "m.room.message" and isinstance(content, dict) and isinstance(content.get("body"), str):
            texts.append(content["body"])
    return "\n".join(texts)


def _bad(errcode: str, message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(content_type="application/json", text=json.dumps({"errcode": errcode, "error": message}))


async def _json_body(request: web.Request) -> Any:
    """The body as JSON, or a 400 that says what is wrong (aiohttp caches it for mautrix)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    try:
        return parse_json(await request.read())
    except RefusedJson as e:
        raise _bad(e.errcode, e.message) from None
