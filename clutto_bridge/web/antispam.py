"""The endpoints synapse-http-antispam calls before Synapse stores an event (issue 15).

The module (PyPI ``synapse-http-antispam``, in Synapse's environment) POSTs each callback's
arguments as JSON to ``<base_url>/<callback>`` with ``Authorization: Bearer <secret>``. A
2xx answer lets Synapse go on; any other status with a JSON body is a refusal the client
sees (``errcode`` and ``error``); anything else, or no answer, is the callback's fail mode.

Here too: the module configuration the bridge recommends (``module_config``, used by the
demo and the tests) and ``antispam_findings``, a pure check of a homeserver config for
``doctor``.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from clutto_bridge.config import Settings
from clutto_bridge.domain.gate import Gatekeeper
from clutto_bridge.policy.gate import Refusal
from clutto_bridge.web.bodies import read_json
from clutto_bridge.web.collection import mark_homeserver_question
from clutto_bridge.web.errors import error_response

log = logging.getLogger("clutto.antispam")

PATH = "/_clutto/antispam"
MODULE = "synapse_http_antispam.HTTPAntispam"
MODULE_VERSION = "0.5.1"  # the version the demo and the tests run (pyproject.toml)
CALLBACKS = ("user_may_join_room", "user_may_invite", "check_event_for_spam")
# With the bridge down, every callback lets Synapse go on; the bridge enforces after the
# fact once it is back (it receives the queued events). A fail-closed join or invite
# would refuse every join and invite on the homeserver, team or not (docs/setup/enforcement.md).
FAIL_OPEN = dict.fromkeys(CALLBACKS, True)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JoinQuestion(_Body):
    user: str
    room: str
    is_invited: bool = False


class InviteQuestion(_Body):
    inviter: str
    invitee: str
    room_id: str


class EventQuestion(_Body):
    event: dict[str, Any]


class PingQuestion(_Body):
    id: str


class AntispamEndpoints:
    def __init__(self, gate: Gatekeeper, secret: str) -> None:
        self.gate = gate
        self.expected = secret.encode()

    def register(self, app: web.Application) -> None:
        routes: dict[str, tuple[type[_Body], Callable[[Any], Awaitable[Refusal | None]]]] = {
            "user_may_join_room": (JoinQuestion, lambda q: self.gate.join(q.user, q.room)),
            "user_may_invite": (InviteQuestion, lambda q: self.gate.invite(q.inviter, q.invitee, q.room_id)),
            "check_event_for_spam": (EventQuestion, lambda q: self.gate.event(q.event)),
        }
        for name, (model, decide) in routes.items():
            app.router.add_post(f"{PATH}/{name}", self._handler(name, model, decide))
        app.router.add_post(f"{PATH}/ping", self._handler("ping", PingQuestion, None))

    def _handler(
        self, name: str, model: type[_Body], decide: Callable[[Any], Awaitable[Refusal | None]] | None
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if not self._authorized(request):
                # Not JSON on purpose: the module then applies the callback's fail mode, as for
                # a bridge that is down, instead of showing every user an error about tokens.
                # No address here: the access log line of this request has the client in the form
                # policy.collection keeps (request.remote would be the full address).
                log.warning("Refused a %s request: wrong or missing antispam secret", name)
                return web.Response(status=401, text="wrong or missing antispam secret (antispam.shared_secret)")
            try:
                question = model.model_validate(await read_json(request))
            except ValidationError:
                return error_response(400, "M_BAD_JSON", f"The body of {name} must be JSON with its arguments.")
            if decide is None:
                assert isinstance(question, PingQuestion), "only ping has no decision"
                mark_homeserver_question(request)
                return web.json_response({"id": question.id, "status": "ok"})
            started = time.perf_counter()
            refusal = await decide(question)
            # Answered: one question per message, event or join on the homeserver, asked by the
            # homeserver with the secret. Not logged or recorded one by one (web/collection.py);
            # the gate logs refusals. A failure (500) above is logged and recorded as usual.
            mark_homeserver_question(request)
            response = web.json_response({}) if refusal is None else error_response(403, refusal.errcode, refusal.error)
            # The decision's own time (W3C Server-Timing), apart from HTTP: bench/antispam.py reads it.
            response.headers["Server-Timing"] = f"decide;dur={(time.perf_counter() - started) * 1000:.3f}"
            return response

        return handle

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.expected)


# --- the homeserver's side ---------------------------------------------------------------------


def module_config(bridge_url: str, secret: str, fail_open: dict[str, bool] | None = None) -> dict[str, Any]:
    """The ``modules:`` entry of homeserver.yaml that points the module at this bridge."""
    return {
        "module": MODULE,
        "config": {
            "base_url": bridge_url.rstrip("/") + PATH,
            "authorization": secret,
            "enabled_callbacks": list(CALLBACKS),
            "fail_open": dict(fail_open if fail_open is not None else FAIL_OPEN),
        },
    }


@dataclass(frozen=True)
class Finding:
    """One problem of a homeserver config, for ``doctor``: what is wrong and how to fix it."""

    # "absent": the module is not listed (the rules are enforced only after the fact);
    # "error": listed but it cannot reach or satisfy the bridge; "warning": a choice to review.
    severity: str
    message: str


def antispam_findings(homeserver_config: dict, settings: Settings) -> list[Finding]:
    """Whether homeserver.yaml lists the module with this bridge's URL (``appservice.address``,
    where Synapse reaches the bridge) and secret. Pure (a loaded homeserver.yaml and the
    settings in, findings out), so ``doctor`` can run it as one check."""
    if not settings.antispam.enabled:
        return []
    bridge_url, secret = settings.appservice.address, settings.antispam.shared_secret
    wanted = bridge_url.rstrip("/") + PATH
    entries = [m for m in homeserver_config.get("modules") or [] if isinstance(m, dict) and m.get("module") == MODULE]
    if not entries:
        return [
            Finding(
                "absent",
                f"modules: has no {MODULE}; rules are enforced only after the fact. Install "
                f"synapse-http-antispam=={MODULE_VERSION} in Synapse's environment and add: "
                f"{module_config(bridge_url, '<antispam.shared_secret>')}",
            )
        ]
    config = entries[0].get("config") or {}
    findings = []
    if str(config.get("base_url", "")).rstrip("/") != wanted:
        findings.append(Finding("error", f"{MODULE} base_url is {config.get('base_url')!r}; it must be {wanted!r}."))
    if "authorization" not in config and "authorization_path" in config:
        findings.append(
            Finding(
                "warning",
                f"{MODULE} reads its secret from authorization_path; make sure the file holds antispam.shared_secret.",
            )
        )
    elif not hmac.compare_digest(str(config.get("authorization", "")).encode(), secret.encode()):
        findings.append(
            Finding("error", f"{MODULE} authorization is not antispam.shared_secret; the bridge refuses its requests.")
        )
    enabled_callbacks = config.get("enabled_callbacks")
    if enabled_callbacks is None:
        findings.append(
            Finding(
                "warning",
                f"{MODULE} has no enabled_callbacks: it forwards every callback, also "
                f"those the bridge does not serve. List {', '.join(CALLBACKS)}.",
            )
        )
    else:
        missing = [c for c in CALLBACKS if c not in enabled_callbacks]
        if missing:
            findings.append(Finding("error", f"{MODULE} enabled_callbacks lacks {', '.join(missing)}."))
    closed = [c for c in ("user_may_join_room", "user_may_invite") if not (config.get("fail_open") or {}).get(c)]
    if closed:
        findings.append(
            Finding(
                "warning",
                f"{', '.join(closed)} fail closed: while the bridge is down nobody on "
                "this homeserver can do that, in any room.",
            )
        )
    return findings
