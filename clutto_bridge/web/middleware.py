"""Middleware of the provisioning API: bearer-token auth and uniform error bodies."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from clutto_bridge.domain.errors import TeamError
from clutto_bridge.matrix.openid import OpenIDVerifier
from clutto_bridge.web.errors import ApiError, error_response

# Who acts in a provisioning API request: None for the operator's secret, else the member's user ID.
ACTOR = web.RequestKey[str | None]("actor")

log = logging.getLogger("clutto.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def after_each_request(note: Callable[[web.Request, int], None]) -> Callable:
    """A middleware that tells ``note`` every request and the status it ended with, refusals
    (HTTP exceptions) and failures (500) included."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            note(request, status)

    return middleware


def bearer_auth(secret: str, openid: OpenIDVerifier) -> Callable:
    """Every request needs a bearer token: the operator's secret or a member's OpenID token.
    The one exception is a route declared ``public`` (the published public keys).

    ``request[ACTOR]`` is None for the operator, else the member's user ID; the domain
    services decide what that member may do.
    """
    expected = secret.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if getattr(request.match_info.handler, "public", False):
            request[ACTOR] = None  # public key material only (GET /keys); no one is acting
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if not header:
            return error_response(401, "M_MISSING_TOKEN", "Missing Authorization: Bearer token.")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return error_response(401, "M_UNKNOWN_TOKEN", "Unknown or malformed access token.")
        if hmac.compare_digest(token.encode(), expected):
            request[ACTOR] = None
        else:
            user_id = await openid.user_of(token)
            if user_id is None:
                return error_response(401, "M_UNKNOWN_TOKEN", "Unknown or malformed access token.")
            request[ACTOR] = user_id
        return await handler(request)

    return middleware


@web.middleware
async def matrix_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain refusals become 4xx; aiohttp's own errors and crashes get Matrix-style bodies."""
    try:
        return await handler(request)
    except TeamError as e:
        return error_response(e.status, e.errcode, e.message)
    except ApiError:
        raise
    except web.HTTPNotFound:
        return error_response(404, "M_UNRECOGNIZED", f"No such endpoint: {request.method} {request.path}")
    except web.HTTPMethodNotAllowed as e:
        response = error_response(405, "M_UNRECOGNIZED", f"{request.method} is not allowed on {request.path}")
        response.headers["Allow"] = ",".join(sorted(e.allowed_methods))
        return response
    except web.HTTPException:
        raise
    except Exception:
        log.exception("Provisioning request %s %s failed", request.method, request.path)
        return error_response(500, "M_UNKNOWN", "Internal error; see the bridge log.")
