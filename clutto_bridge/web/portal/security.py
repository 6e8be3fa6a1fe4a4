"""What every portal response carries, and what every form must prove.

- Headers: a strict Content-Security-Policy (our own stylesheet only: no script, no inline
  style, no third-party resource, no framing), ``X-Frame-Options: DENY``, no referrer (a
  sign-in link's token must not leak), no caching of pages, HSTS when served over https.
- CSRF: every POST carries the session's token in a hidden field, compared in constant time.
- Refusals are pages: a domain refusal or a bad form is its 4xx with the message; anything
  unexpected is a 500 page with no traceback (the log has it).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import MutableMapping

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_session import Session, get_session

from clutto_bridge.domain.errors import TeamError
from clutto_bridge.web.portal.forms import CSRF_FIELD

log = logging.getLogger("clutto.portal")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(*, https: bool) -> Middleware:
    @web.middleware
    async def add_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as e:
            _harden(e.headers, https)
            raise
        _harden(response.headers, https)
        return response

    return add_headers


def _harden(headers: MutableMapping[str, str], https: bool) -> None:
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TeamError as e:
        return _page(request, e.status, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _page(request, e.status, e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason)
    except Exception:
        log.exception("Portal page %s %s failed", request.method, request.path)
        return _page(
            request, 500, "Something went wrong on our side. Please try again; the operator's log has the details."
        )


def _page(request: web.Request, status: int, message: str) -> web.Response:
    return aiohttp_jinja2.render_template("error.html", request, {"status": status, "message": message}, status=status)


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use (which also starts the session)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


@web.middleware
async def csrf_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        session = await get_session(request)
        form = await request.post()
        sent = form.get(CSRF_FIELD)
        expected = session.get("csrf")
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
            log.info(
                "Portal %s %s refused by the CSRF check: %s",
                request.method,
                request.path,
                _csrf_reason(session, sent, expected),
            )
            raise web.HTTPForbidden(
                text="This form has expired or did not come from the portal (CSRF check). Reload the page and try again."
            )
    return await handler(request)


def _csrf_reason(session: Session, sent: object, expected: str | None) -> str:
    """Why a form failed the check, for the operator's log (never the tokens themselves)."""
    if not isinstance(sent, str) or not sent:
        return "the form carried no token"
    if session.new:
        return "the browser sent no live session (no cookie, or its session expired or ended)"
    if not expected:
        return "the session holds no token"
    return "the token does not match the session's"
