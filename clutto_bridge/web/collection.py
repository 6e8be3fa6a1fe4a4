"""Every request the bridge serves, logged and recorded only as ``policy.collection`` says (P4).

Three places would otherwise write a client's address: aiohttp's access log (replaced here
by ``PolicyAccessLogger``), aiohttp's "Error handling request from <address>" on the server
logger (``PolicyServerLogger`` rewrites it), and the access records in the database (the
``record_requests`` middleware, on the root application, so every sub-application on the
port, the provisioning API, the portal and the appservice endpoints alike, goes through it).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from clutto_bridge.clock import Clock
from clutto_bridge.policy.collection import (
    CollectionRules,
    RequestFacts,
    day_of,
    kept_address,
    parse_address,
    request_facts,
)
from clutto_bridge.web.middleware import after_each_request
from clutto_bridge.web.request_records import AccessRecords

ACCESS_LOG = logging.getLogger("clutto.access")
UNMATCHED = "unmatched"
# Set on a request by a handler that answered the homeserver's own authenticated question
# before the write (web/antispam.py): one per message sent on the homeserver, from the
# homeserver's address, with no person's data in it. Neither logged nor recorded one by
# one (the cost of a message would otherwise be a log line and an access record). A request
# that fails the shared secret, or any other request on the port, is logged and recorded.
HOMESERVER_QUESTION: Any = (
    web.RequestKey("clutto.homeserver_question", bool) if hasattr(web, "RequestKey") else "clutto.homeserver_question"
)  # aiohttp >= 3.14 has typed request keys


def mark_homeserver_question(request: BaseRequest) -> None:
    request[HOMESERVER_QUESTION] = True


def is_homeserver_question(request: BaseRequest) -> bool:
    return request.get(HOMESERVER_QUESTION, False)


# Set by the recording middleware; a request without it was answered by aiohttp itself.
RECORDED: Any = web.RequestKey("clutto.recorded", bool) if hasattr(web, "RequestKey") else "clutto.recorded"


def is_recorded(request: BaseRequest) -> bool:
    return request.get(RECORDED, False)


# What the policy keeps of a request, worked out once (by the middleware, else the access
# logger) and read by the other.
FACTS_REMEMBERED = 1024  # distinct clients whose facts are kept worked out
FACTS: Any = web.RequestKey("clutto.facts", RequestFacts) if hasattr(web, "RequestKey") else "clutto.facts"


class DailySalt:
    """The key of ``hashed`` addresses: random, one per UTC day, held in this object only.

    It is never written anywhere, so after a restart (or the next day) no hash can be
    linked to an earlier one.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._day: int | None = None
        self._salt = b""

    def current(self) -> bytes:
        day = day_of(self.clock.now_ms())
        if day != self._day:
            self._day, self._salt = day, secrets.token_bytes(32)
        return self._salt


class RequestCollection:
    """The policy and its daily salt, for the logger, the server logger and the middleware."""

    def __init__(self, rules: CollectionRules, clock: Clock) -> None:
        self.rules = rules
        self.salt = DailySalt(clock)
        self.records: AccessRecords | None = None
        # A client's requests repeat the same peer, proxy chain and headers: their facts are
        # worked out once. The key is a keyed hash of those values under the day's salt, so no
        # address or header is remembered, and no entry is found again after its day (the
        # oldest are dropped past FACTS_REMEMBERED).
        self._remembered: OrderedDict[bytes, RequestFacts] = OrderedDict()

    def facts(self, request: BaseRequest) -> RequestFacts:
        """What the policy keeps of ``request``, worked out on the first call and kept on the
        request for the next (the middleware records it, the access logger logs it)."""
        facts = request.get(FACTS)
        if facts is None:
            facts = request[FACTS] = self._facts(request)
        return facts

    def _facts(self, request: BaseRequest) -> RequestFacts:
        # A request aiohttp could not parse (a header too long, a NUL in one) reaches the
        # access log with a plain dict of no headers: only its peer is known.
        sent = request.headers
        # Several X-Forwarded-For lines are one list (RFC 9110): a client's own line comes
        # first, so reading only the first would believe the client over the proxy.
        forwarded = sent.getall("X-Forwarded-For", []) if hasattr(sent, "getall") else []
        headers = {
            "X-Forwarded-For": ", ".join(forwarded) or None,
            "User-Agent": sent.get("User-Agent"),
            "Referer": sent.get("Referer"),
            "Accept-Language": sent.get("Accept-Language"),
        }
        salt = self.salt.current()
        values = "\0".join(v or "" for v in (request.remote, *headers.values())).encode("utf-8", "surrogateescape")
        key = hmac.digest(salt, values, "sha256")
        facts = self._remembered.get(key)
        if facts is not None:
            self._remembered.move_to_end(key)
            return facts
        facts = self._remembered[key] = request_facts(self.rules, request.remote, headers, salt)
        if len(self._remembered) > FACTS_REMEMBERED:
            self._remembered.popitem(last=False)
        return facts

    def address_shown(self, text: Any) -> Any:
        """An argument of a log message that is an address, as the policy keeps it."""
        if not isinstance(text, str):
            return text
        address = parse_address(text)
        if address is None:
            return text
        return kept_address(address, self.rules.ip, self.salt.current()) or "-"

    def peer_filter(self) -> logging.Filter:
        """For loggers of other listeners that name the peer (aiosmtpd's ``mail.log`` writes
        ``('203.0.113.5', 51234) unrecognised: ...`` at WARNING)."""
        return PeerFilter(self)

    def runner_options(self) -> dict[str, Any]:
        """Options of the aiohttp ``AppRunner`` serving the bridge's port."""
        collection = self

        class Logger(PolicyAccessLogger):
            policy = collection

        return {"access_log_class": Logger, "access_log": ACCESS_LOG, "logger": PolicyServerLogger(self)}

    def middleware(self, records: AccessRecords) -> Callable:
        """Records every request; the access logger records those that never reached it."""
        self.records = records
        return record_requests(self, records)


def route_of(request: BaseRequest) -> str:
    """The route template (``/_clutto/v1/teams/{team_id}``), never the path: paths hold ids,
    and query strings may hold tokens."""
    try:
        match_info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # a request that failed before routing
        return UNMATCHED
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return getattr(resource, "canonical", None) or UNMATCHED


class PolicyAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line, with only what the policy keeps: client, method, route
    template, status, duration, and the user agent, referrer and language when allowed."""

    policy: RequestCollection

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if is_homeserver_question(request):
            return
        facts = self.policy.facts(request)
        if not is_recorded(request) and self.policy.records is not None:
            # aiohttp answered before any middleware ran (a request it could not parse).
            self.policy.records.record(request.method, route_of(request), response.status, facts)
        parts = [facts.client or "-", f'"{request.method} {route_of(request)}"', str(response.status), f"{time:.3f}s"]
        for name, value in (("ua", facts.user_agent), ("referrer", facts.referrer), ("lang", facts.language)):
            if value is not None:
                parts.append(f'{name}="{value}"')
        self.logger.info(" ".join(parts))


class PolicyServerLogger(logging.LoggerAdapter):
    """aiohttp's server logger, whose "Error handling request from %s" would name the peer."""

    def __init__(self, policy: RequestCollection) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.policy = policy

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(level, msg, *(self.policy.address_shown(a) for a in args), **kwargs)


class PeerFilter(logging.Filter):
    """Rewrites a log record's arguments that are addresses or (address, port) pairs."""

    def __init__(self, policy: RequestCollection) -> None:
        super().__init__()
        self.policy = policy

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._shown(a) for a in record.args)
        return True

    def _shown(self, arg: Any) -> Any:
        if isinstance(arg, tuple) and arg and isinstance(arg[0], str) and parse_address(arg[0]) is not None:
            return (self.policy.address_shown(arg[0]), *arg[1:])
        return self.policy.address_shown(arg)


def record_requests(policy: RequestCollection, records: AccessRecords) -> Callable:
    """Keep an access record of every request, in the form the policy allows."""

    def note(request: BaseRequest, status: int) -> None:
        request[RECORDED] = True
        if not is_homeserver_question(request):
            records.record(request.method, route_of(request), status, policy.facts(request))

    return after_each_request(note)
