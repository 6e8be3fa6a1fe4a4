"""mautrix's AppService, with transaction ids remembered in the bridge database.

mautrix keeps applied transaction ids in memory only; after a restart the homeserver may
retry a transaction the bridge already applied. Here a transaction is recorded once its
events were handled, and a recorded id is answered without applying it again.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Protocol

from aiohttp import web
from mautrix.appservice import AppService
from mautrix.types import JSON

# Homeserver transactions are small; a body beyond these bounds is refused before parsing
# reaches mautrix (which assumes a well-formed body and answers 500 otherwise).
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
_EVENT_LISTS = ("events", "ephemeral", "de.sorunome.msc2409.ephemeral", "to_device", "de.sorunome.msc2409.to_device")


class AppliedTransactions(Protocol):
    """Where applied transaction ids are kept (the bridge database's ``TransactionLog``)."""

    async def seen(self, txn_id: str) -> bool: ...

    async def record(self, txn_id: str, now_ms: int) -> None: ...


class CluttoAppService(AppService):
    def __init__(
        self, *args: Any, transactions: AppliedTransactions, now_ms: Callable[[], int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.transaction_log = transactions
        self.now_ms = now_ms
        # Handlers run before the transaction is acknowledged, so a crash mid-way makes
        # the homeserver retry it instead of losing events.
        self.synchronous_handlers = True

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
        return await super()._http_handle_transaction(request)

    async def _http_ping(self, request: web.Request) -> web.Response:
        if self._check_token(request) and not isinstance(await _json_body(request), dict):
            raise _bad("M_BAD_JSON", "A ping body is a JSON object.")
        return await super()._http_ping(request)

    async def handle_transaction(self, txn_id: str, **kwargs: Any) -> JSON:
        if await self.transaction_log.seen(txn_id):
            self.log.debug("Transaction %s was already applied, not applying it again", txn_id)
            return {}
        result = await super().handle_transaction(txn_id, **kwargs)
        await self.transaction_log.record(txn_id, self.now_ms())
        return result


def _bad(errcode: str, message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(content_type="application/json", text=json.dumps({"errcode": errcode, "error": message}))


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (iteratively: a hostile body must not exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


async def _json_body(request: web.Request) -> Any:
    """The body as JSON, or a 400 that says what is wrong (aiohttp caches it for mautrix)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad("M_NOT_JSON", "The body is not UTF-8.") from None
    except RecursionError:
        raise _bad("M_BAD_JSON", f"The body nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError:
        raise _bad("M_NOT_JSON", "The body is not JSON.") from None
    if _depth(body) > MAX_DEPTH:
        raise _bad("M_BAD_JSON", f"The body nests deeper than {MAX_DEPTH} levels.")
    return body
