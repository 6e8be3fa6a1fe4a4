"""mautrix's AppService as the homeserver adapter: transactions in, events out to the handlers.

What a transaction carries goes to a receiver (the durable inbox's work, ``jobs/inbox.py``),
which keeps its new events and queues them; the transaction is acknowledged only once the
receiver returned, and answered 500 when it raised, so the homeserver sends it again. The
receiver later hands each stored event back to ``handle_event``, which turns it into the
mautrix event the handlers take.

mautrix's own transaction handler does not fit: it decides repeats by transaction id (kept
only in memory; the bridge's key is the event id), reads at most aiohttp's 1 MiB, and answers
200 when handling failed. So ``register_routes``, mautrix's public hook for its routes, puts
this module's handlers on the transaction and ping paths, and mautrix's own on the user and
alias queries. The device parts of a transaction (to-device messages, key counts, device
lists) go through mautrix's public ``handle_transaction``, unchanged, in the device lane.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import web
from mautrix.api import Method, Path
from mautrix.appservice import AppService, AppServiceAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import JSON, DeviceLists, DeviceOTKCount, Event, EventType
from mautrix.types.util import SerializerError

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


@dataclass(frozen=True)
class Reach:
    """What the homeserver answered when asked to ping the bridge."""

    # True: the ping got through; False: the homeserver could not reach the bridge; None: the
    # homeserver has no ping endpoint (older than Matrix 1.7), so nothing is known.
    reached: bool | None
    detail: str


class TransactionReceiver(Protocol):
    """Where a transaction's events go (``jobs.inbox.InboxWork``)."""

    async def receive(
        self, txn_id: str, events: list[dict[str, Any]], device_work: Awaitable[object] | None
    ) -> Callable[[], None] | None:
        """Keep and queue the events; raise when they cannot be kept. What it returns runs once
        the transaction is acknowledged."""
        ...


class CluttoAppService(AppService):
    def __init__(self, *args: Any, receiver: TransactionReceiver, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receiver = receiver
        # Parsing, storing (json.dumps) and reading back an event nested TRANSACTION_DEPTH deep
        # recurses once per level, on top of the frames of the server: Python's default limit
        # of 1,000 would turn such a transaction into a 500 that Synapse retries forever.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), TRANSACTION_DEPTH + 1000))
        # Options of the AppRunner serving the port (the bridge's access logger, for one).
        self.runner_options: dict[str, Any] = {}
        # Turns an m.room.encrypted event into the event it holds, before any handler sees it
        # (the bot's E2EE device); what it cannot read is handed on encrypted.
        self.decrypt: Callable[[Event], Awaitable[Event | None]] | None = None

    def register_routes(self, app: web.Application) -> None:
        """mautrix's routes, with this module's handlers for transactions and pings. The user
        and alias queries are mautrix's own handlers (it has no public name for them)."""
        for prefix in ("", "/_matrix/app/v1"):
            app.router.add_route("PUT", f"{prefix}/transactions/{{transaction_id}}", self.receive_transaction)
            app.router.add_route("GET", f"{prefix}/rooms/{{alias}}", self._http_query_alias)
            app.router.add_route("GET", f"{prefix}/users/{{user_id}}", self._http_query_user)
        app.router.add_route("POST", "/_matrix/app/v1/ping", self.ping)

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

    async def start_client_only(self) -> None:
        """The bot's side of the appservice without the HTTP listener: for a job worker, which
        acts on the homeserver but receives no transactions. mautrix's ``start`` does both, and
        sets the session and intent (read through its public ``http_session`` and ``intent``)
        only there: this is the one place that sets them itself."""
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

    async def receive_transaction(self, request: web.Request) -> web.Response:
        """Hand the transaction to the receiver, then acknowledge it; 500 when it could not be kept."""
        self._authorize(request)
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
        parts = self._device_parts(body)
        device_work: Coroutine[Any, Any, JSON] | None = None
        if any(parts.get(key) for key in ("ephemeral", "to_device", "otk_counts")) or getattr(
            parts.get("device_lists"), "changed", None
        ):
            device_work = self.handle_transaction(txn_id, events=[], extra_data=JSON(body), **parts)
        try:
            # Objects, every one (refused above otherwise).
            acknowledged = await self.receiver.receive(txn_id, cast(list[dict[str, Any]], events), device_work)
        except Exception:
            # Not acknowledged: the homeserver sends it again, device parts and all.
            if device_work is not None:
                device_work.close()
            self.log.exception("Could not store transaction %s", txn_id)
            return web.json_response(
                {"errcode": "M_UNKNOWN", "error": "The transaction could not be stored."}, status=500
            )
        response = web.json_response({})
        if acknowledged is not None:
            await response.prepare(request)
            await response.write_eof()
            acknowledged()
        return response

    async def ping(self, request: web.Request) -> web.Response:
        """The homeserver's ping (``POST /_matrix/app/v1/ping``), its body bounded and checked."""
        self._authorize(request)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
        # read() keeps aiohttp's bound of 1 MiB for a body of unstated length.
        body = _parse_json(await request.read())
        if not isinstance(body, dict):
            raise _bad("M_BAD_JSON", "A ping body is a JSON object.")
        self.log.info("Received ping from homeserver with transaction ID %s", body.get("transaction_id"))
        return web.json_response({})

    async def ask_to_be_pinged(self) -> Reach:
        """Ask the homeserver to ping this appservice (``POST /_matrix/client/v1/appservice/{id}/ping``,
        Matrix 1.7, as mautrix bridges do at start). A ping that gets through shows the homeserver
        reaches the bridge, and Synapse then sends at once the transactions it held back while the
        bridge was away: otherwise they wait out its retry back-off, which doubles up to 8.5 minutes."""
        try:
            answer = await self.intent.api.request(
                Method.POST, Path.v1.appservice[self.id].ping, content={}, retry_count=0
            )
        except MatrixRequestError as e:
            if e.http_status in (404, 405) or e.errcode == "M_UNRECOGNIZED":
                return Reach(None, f"the homeserver has no appservice ping (HTTP {e.http_status})")
            return Reach(False, _ping_failure(e))
        return Reach(True, f"{answer.get('duration_ms', '?')} ms there and back")

    def _authorize(self, request: web.Request) -> None:
        """The homeserver's token, as mautrix reads it (query parameter, else bearer header); 401 otherwise."""
        token = request.rel_url.query.get("access_token")
        if token is None and "Authorization" in request.headers:
            token = request.headers["Authorization"].removeprefix("Bearer ")
        if token is None or not hmac.compare_digest(token.encode(), self.hs_token.encode()):
            raise web.HTTPUnauthorized(
                content_type="application/json",
                text=json.dumps({"error": "Invalid auth token", "errcode": "M_UNKNOWN_TOKEN"}),
            )

    def _device_parts(self, body: dict[str, Any]) -> dict[str, Any]:
        """The ephemeral, to-device, device-list and key-count parts, as mautrix's handler takes them."""
        parts: dict[str, Any] = {}
        if self.ephemeral_events:
            parts["ephemeral"] = _field(body, "ephemeral", "de.sorunome.msc2409")
        if self.encryption_events:
            parts["to_device"] = _field(body, "to_device", "de.sorunome.msc2409")
            parts["device_lists"] = DeviceLists.deserialize(
                JSON(_field(body, "device_lists", "org.matrix.msc3202") or {})
            )
            counts = _field(body, "device_one_time_keys_count", "org.matrix.msc3202") or {}
            parts["otk_counts"] = {
                user: {device: DeviceOTKCount.deserialize(count) for device, count in devices.items()}
                for user, devices in counts.items()
            }
        return parts

    async def handle_event(self, raw: dict[str, Any]) -> Awaitable[object] | None:
        """Run every handler on a stored event; the work they hand back, if any, as one awaitable."""
        try:
            event = Event.deserialize(JSON(_with_prev_content(raw)))
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


def _field(body: dict[str, Any], name: str, unstable_prefix: str) -> Any:
    """A transaction's field under its stable name, else its unstable one, taken out of ``body``."""
    if name in body:
        return body.pop(name)
    return body.pop(f"{unstable_prefix}.{name}", None)


def _with_prev_content(raw: dict[str, Any]) -> dict[str, Any]:
    """The event with an ``unsigned`` object, and a top-level ``prev_content`` (older servers)
    also in it, where mautrix reads it (as mautrix's own handler prepares an event)."""
    if "unsigned" in raw and raw["unsigned"] is None:
        del raw["unsigned"]
    unsigned = raw.setdefault("unsigned", {})
    if "prev_content" in raw and isinstance(unsigned, dict) and "prev_content" not in unsigned:
        unsigned["prev_content"] = raw["prev_content"]
    return raw


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


def _ping_failure(e: MatrixRequestError) -> str:
    """The homeserver's reason for a failed ping (its MSC2659 error codes), in an operator's words."""
    reasons = {
        "M_URL_NOT_SET": "the registration file has no url",
        "M_CONNECTION_FAILED": "it could not connect to the registration's url",
        "M_CONNECTION_TIMEOUT": "the registration's url did not answer in time",
        "M_BAD_STATUS": "the registration's url answered with an error",
    }
    return f"{reasons.get(e.errcode, e.message or 'the ping failed')} ({e.errcode or 'HTTP'} {e.http_status})"
