"""The provisioning API under ``/_clutto/v1``: the endpoint groups, routed and documented from one list.

Each feature declares its endpoints in its own module, as ``commands/`` declares the bot's
commands (``web/teams.py``, ``web/members.py``, ``web/rooms.py``, ``web/integrations.py``,
``web/scim_tokens.py``, ``web/retention.py``, ``web/export.py``, ``web/people.py``,
``web/notices.py``, ``web/reports.py``, ``web/keys.py``); ``ENDPOINTS`` lists them once, and
that list builds the router, the OpenAPI document and the metrics' route labels, so nothing
is routed that the document does not describe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import aiohttp
from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.matrix.openid import OpenIDVerifier
from clutto_bridge.metrics import Metrics
from clutto_bridge.web import outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.export import ExportAPI
from clutto_bridge.web.integrations import IntegrationsAPI
from clutto_bridge.web.keys import KeysAPI
from clutto_bridge.web.members import MembersAPI
from clutto_bridge.web.metrics import count_requests
from clutto_bridge.web.middleware import bearer_auth, matrix_errors
from clutto_bridge.web.notices import NoticesAPI
from clutto_bridge.web.openapi import openapi_document
from clutto_bridge.web.people import PeopleAPI
from clutto_bridge.web.reports import ReportsAPI
from clutto_bridge.web.retention import RetentionAPI
from clutto_bridge.web.rooms import RoomsAPI
from clutto_bridge.web.routes import Route, RouteTable
from clutto_bridge.web.scim_tokens import ScimTokensAPI
from clutto_bridge.web.signatures import signing_hook
from clutto_bridge.web.team_access import TeamAccess
from clutto_bridge.web.teams import TeamsAPI

PREFIX = "/_clutto/v1"


class DocumentAPI(Endpoints):
    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.document = o.OpenAPIDocument(document())

    @routes.get("/openapi.json", "This document", responses={200: o.OpenAPIDocument})
    async def openapi(self, request: web.Request) -> o.OpenAPIDocument:
        return self.document


# Every group of endpoints, in the order they are routed: the one list of the API.
ENDPOINTS: tuple[type[Endpoints], ...] = (
    DocumentAPI,
    NoticesAPI,
    ReportsAPI,
    TeamsAPI,
    MembersAPI,
    RoomsAPI,
    IntegrationsAPI,
    ScimTokensAPI,
    RetentionAPI,
    ExportAPI,
    PeopleAPI,
    KeysAPI,
)


def all_routes() -> list[Route]:
    """Every endpoint of the provisioning API, in the order they are routed."""
    return [route for group in ENDPOINTS for route in group.routes.routes]


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document: made from the declarations alone, so once per process."""
    return openapi_document(PREFIX, all_routes())


class ProvisioningAPI:
    def __init__(self, ctx: Services, secret: str, metrics: Metrics | None = None, *, keys: SigningKeys) -> None:
        self.openid = OpenIDVerifier(ctx.settings.homeserver.address, ctx.settings.homeserver.domain)
        middlewares = [matrix_errors, bearer_auth(secret, self.openid)]
        if metrics is not None:
            metrics.allow("route", (PREFIX + route.template for route in all_routes()))
            middlewares.insert(0, count_requests(metrics, PREFIX))
        self.app = web.Application(middlewares=middlewares)
        self.app.on_response_prepare.append(signing_hook(MessageSigner(keys)))
        self.app.cleanup_ctx.append(self._http_session)
        api = ApiContext(ctx, TeamAccess(ctx), keys)
        for group in ENDPOINTS:
            group.routes.register(self.app.router, group(api))
        self.document = document()

    async def _http_session(self, app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            self.openid.session = session
            yield
            self.openid.session = None
