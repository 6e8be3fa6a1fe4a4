"""mautrix's AppService, with a durable inbox of received events in the bridge database.

The acknowledgement depends only on the inbox: the new events of a transaction are written
to it in one database transaction, and only then is the transaction acknowledged; a failed
write answers 500, so the homeserver retries. Nothing that waits on the homeserver (a join,
a reply, a retry) runs before the acknowledgement: every event is handled afterwards, in its
room's lane, and marked done; what a stop or crash left unfinished is handled again on the
next start.

Exactly once: the event id is the key, not the transaction id. Synapse numbers transactions
from the highest one it still keeps, so after a clean restart (SQLite) it sends ids the
bridge saw before, with new events in them. A transaction whose events are all in the inbox
is a retry and is acknowledged without handling anything again; one with new events has
those handled. Its ephemeral and to-device parts carry no event id: they are handed on every
time (Synapse's retries carry none of them, and a repeated to-device message is refused by
Olm itself).

Order: the events of one room are handled in the order they arrived, each after the room's
queued work; rooms do not wait for each other. An event whose handler hands back work (a
bot command) finishes that work in its lane before the room's next event.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import web
from mautrix.appservice import AppService, AppServiceAPI
from mautrix.types import JSON, DeviceLists, DeviceOTKCount, Event, EventType
from mautrix.types.util import SerializerError

from clutto_bridge import testhooks
from clutto_bridge.json_bodies import RefusedJson, parse_json

# What Synapse can send in one transaction: 100 events of up to 64 KiB of canonical JSON
# each, which its encoder escapes to ASCII (a control character takes 6 bytes, so up to
# 384 KiB an event), plus up to 100 ephemeral and 100 to-device events. A 413 is retried
# by Synapse with back-off forever, so the bound is set above what it can send, not near it.
MAX_TRANSACTION_BYTES = 64 * 1024 * 1024
# Any other body on the appservice paths (a ping) is small.
MAX_BODY_BYTES = 64 * 1024
# A transaction nests as deep as the homeserver let a member's event nest (Synapse parses
# client bodies with Python's json, so about a thousand levels): refusing a deeper one
# than the other endpoints accept would stall every later event, as a 413 does.
TRANSACTION_DEPTH = 4096
_READ_CHUNK = 256 * 1024
_EVENT_LISTS = ("events", "ephemeral", "de.sorunome.msc2409.ephemeral", "to_device", "de.sorunome.msc2409.to_device")
# An entry whose handling was interrupted this often (it may be what crashes the bridge) is
# given up, with an error in the log, instead of being tried on every start.
MAX_ATTEMPTS = 3
# The lane of what a transaction carries besides room events (to-device, ephemeral, key counts).
_DEVICE_LANE = ""


class InboxEntry(Protocol):
    id: int
    room_id: str
    event: dict[str, Any]
    attempts: int


class EventInbox(Protocol):
    """Where received events wait until handled (the bridge database's ``Inbox``)."""

    async def accept(self, txn_id: str, events: list[dict[str, Any]], now_ms: int) -> Sequence[InboxEntry]: ...

    async def done(self, entry_ids: list[int], now_ms: int) -> None: ...

    async def unfinished(self) -> Sequence[InboxEntry]: ...


class CluttoAppService(AppService):
    def __init__(self, *args: Any, inbox: EventInbox, now_ms: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Parsing, storing (json.dumps) and reading back an event nested TRANSACTION_DEPTH deep
        # recurses once per level, on top of the frames of the server: Python's default limit
        # of 1,000 would turn such a transaction into a 500 that Synapse retries forever.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), TRANSACTION_DEPTH + 1000))
        self.inbox = inbox
        self.now_ms = now_ms
        # The newest queued work of each room with work in progress (see the module docstring).
        self.lanes: dict[str, asyncio.Task] = {}
        self._lanes_open = asyncio.Event()
        # Options of the AppRunner serving the port (the bridge's access logger, for one).
        self.runner_options: dict[str, Any] = {}
        # Turns an m.room.encrypted event into the event it holds, before any handler sees it
        # (the bot's E2EE device); what it cannot read is handed on encrypted.
        self.decrypt: Callable[[Event], Awaitable[Event | None]] | None = None

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
        """Store, acknowledge, then handle (mautrix's own handler decides by transaction id,
        answers 200 when handling failed, and reads at most aiohttp's 1 MiB)."""
        if not self._check_token(request):
            raise web.HTTPUnauthorized(
                content_type="application/json",
                text=json.dumps({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid auth token"}),
            )
        body = _parse_json(await _read_body(request, MAX_TRANSACTION_BYTES), TRANSACTION_DEPTH)
        if not isinstance(body, dict):
            raise _bad("M_BAD_JSON", "A transaction body is a JSON object.")
        if not isinstance(body.get("events"), list):
            raise _bad("M_BAD_JSON", "A transaction body has an events list.")
        for key in _EVENT_LISTS:
            value = body.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
                raise _bad("M_BAD_JSON", f"{key} must be a list of event objects.")
        txn_id = request.match_info.get("transaction_id", "")
        events = body.pop("events")
        try:
            await self.handle_transaction(txn_id, events=events, extra_data=body, **self._device_parts(body))
        except Exception:
            # Not acknowledged: the homeserver sends it again.
            self.log.exception("Could not store transaction %s", txn_id)
            return web.json_response(
                {"errcode": "M_UNKNOWN", "error": "The transaction could not be stored."}, status=500
            )
        response = web.json_response({})
        if testhooks.armed("EXIT_AFTER_ACK", _bodies(events)):  # acknowledged, then gone (as kill -9)
            self._lanes_open.clear()  # no queued work starts: the crash comes before its first step
            await response.prepare(request)
            await response.write_eof()
            testhooks.exit_now("EXIT_AFTER_ACK")
        return response

    def _device_parts(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ephemeral, to-device, device-list and key-count parts, as mautrix's handler takes them."""
        parts: dict[str, Any] = {}
        if self.ephemeral_events:
            parts["ephemeral"] = self._get_with_fallback(body, "ephemeral", "de.sorunome.msc2409")
        if self.encryption_events:
            parts["to_device"] = self._get_with_fallback(body, "to_device", "de.sorunome.msc2409")
            parts["device_lists"] = DeviceLists.deserialize(
                JSON(self._get_with_fallback(body, "device_lists", "org.matrix.msc3202") or {})
            )
            counts = self._get_with_fallback(body, "device_one_time_keys_count", "org.matrix.msc3202", default={})
            parts["otk_counts"] = {
                user: {device: DeviceOTKCount.deserialize(count) for device, count in devices.items()}
                for user, devices in counts.items()
            }
        return parts

    async def _http_ping(self, request: web.Request) -> web.Response:
        if self._check_token(request):
            if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
                raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
            # read() keeps the body for mautrix's handler, which reads it again.
            if not isinstance(_parse_json(await request.read()), dict):
                raise _bad("M_BAD_JSON", "A ping body is a JSON object.")
        return await super()._http_ping(request)

    async def start_client_only(self) -> None:
        """The bot's side of the appservice without the HTTP listener: for a job worker, which
        acts on the homeserver but receives no transactions (mautrix's ``start`` does both)."""
        await self.state_store.open()
        tls: dict[str, Any] = {"ssl": False} if self.server.startswith("https://") and not self.verify_ssl else {}
        self._http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit, **tls),
            headers={"User-Agent": self.default_ua},
        )
        self._intent = AppServiceAPI(
            base_url=self.server,
            bot_mxid=self.bot_mxid,
            log=self.log,
            token=self.as_token,
            state_store=self.state_store,
            bridge_name=self.bridge_name,
            client_session=self._http_session,
            default_retry_count=self.default_http_retry_count,
        ).bot_intent()
        self.runner = None

    async def handle_transaction(self, txn_id: str, *, events: list[JSON], **parts: Any) -> JSON:
        """Keep the transaction's new events and queue them; raises when they cannot be kept."""
        # Objects, every one (_http_handle_transaction refuses a body with anything else).
        entries = await self.inbox.accept(txn_id, cast(list[dict[str, Any]], events), self.now_ms())
        if events and not entries:
            self.log.debug("Transaction %s holds only events already received: a retry", txn_id)
        for entry in entries:
            self._queue(entry.room_id, entry)
        if any(parts.get(key) for key in ("ephemeral", "to_device", "otk_counts")) or getattr(
            parts.get("device_lists"), "changed", None
        ):
            self._queue(_DEVICE_LANE, None, super().handle_transaction(txn_id, events=[], **parts))
        return JSON({})

    async def resume_inbox(self) -> int:
        """Queue what the last stop or crash left unhandled, ahead of anything new in the same
        rooms. It runs once ``open_inbox`` is called (when the bridge is ready)."""
        entries = await self.inbox.unfinished()
        given_up = [e.id for e in entries if e.attempts > MAX_ATTEMPTS]
        for entry in entries:
            if entry.attempts > MAX_ATTEMPTS:
                self.log.error(
                    "Giving up event %s in %s: its handling was interrupted %d times",
                    entry.event.get("event_id"),
                    entry.room_id,
                    entry.attempts - 1,
                )
            else:
                self._queue(entry.room_id, entry)
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

    def _queue(self, lane: str, entry: InboxEntry | None, work: Awaitable | None = None) -> None:
        """Handle ``entry`` (or run ``work``) after the lane's queued work."""
        task = asyncio.create_task(self._in_lane(self.lanes.get(lane), entry, work))
        self.lanes[lane] = task

        def finished(done: asyncio.Task) -> None:
            if self.lanes.get(lane) is done:
                del self.lanes[lane]

        task.add_done_callback(finished)

    async def _in_lane(self, previous: asyncio.Task | None, entry: InboxEntry | None, work: Awaitable | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self._lanes_open.wait()
        try:
            if entry is not None:
                work = await self._handle(entry)
            if work is not None:
                await work
        except Exception:
            about = (
                f"event {entry.event.get('event_id')} in {entry.room_id}"
                if entry
                else "the device parts of a transaction"
            )
            self.log.exception("Handling %s failed", about)
        if entry is not None:
            await self.inbox.done([entry.id], self.now_ms())

    async def _handle(self, entry: InboxEntry) -> Awaitable | None:
        """Run every handler on the entry's event; the work they hand back, if any, as one awaitable."""
        raw = entry.event
        try:
            self._fix_prev_content(JSON(raw))
            event = Event.deserialize(raw)
        except SerializerError:
            self.log.exception("Failed to deserialize event %s", raw.get("event_id"))
            return None
        cls = EventType.Class.STATE if getattr(event, "state_key", None) is not None else EventType.Class.MESSAGE
        event.type = event.type.with_class(cls)
        if event.type == EventType.ROOM_ENCRYPTED and self.decrypt is not None:
            event = await self.decrypt(event) or event
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


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, read from the stream up to ``limit`` bytes (aiohttp's ``read`` stops at the
    application's ``client_max_size``, 1 MiB, which the API and portal keep)."""
    too_large = web.HTTPRequestEntityTooLarge(limit, request.content_length or limit + 1)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(raw: bytes, max_depth: int | None = None) -> Any:
    """The body as JSON, or a 400 that says what is wrong."""
    try:
        return parse_json(raw) if max_depth is None else parse_json(raw, max_depth)
    except RefusedJson as e:
        raise _bad(e.errcode, e.message) from None
