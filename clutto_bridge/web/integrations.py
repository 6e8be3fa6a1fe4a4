"""Provisioning API for what a team lets in: integration bots, widgets, and its email address
(commands/integrations.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class IntegrationsAPI(Endpoints):
    """A team's allowlist and its email address."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.integrations = api.services.integrations
        self.email = api.services.email
        self._team = api.team

    @routes.get(
        "/teams/{team_id}/integrations",
        "The team's allowlist of integration bots and widget URL prefixes (and the operator's defaults)",
        responses={200: o.Allowlist},
        errors=UNKNOWN_TEAM,
    )
    async def list_integrations(self, request: web.Request) -> o.Allowlist:
        team = await self._team(request)
        return o.Allowlist.of(await self.integrations.allowlist(team))

    @routes.post(
        "/teams/{team_id}/integrations",
        "Allow a bot (Matrix ID) or widgets under an https:// URL prefix",
        body=i.IntegrationValue,
        responses={201: o.Allowlist},
        errors={**UNKNOWN_TEAM, 409: "Already allowed"},
    )
    async def allow_integration(self, request: web.Request, body: i.IntegrationValue) -> o.Allowlist:
        team = await self._team(request)
        await self.integrations.allow(team, body.value, actor=request[ACTOR])
        return o.Allowlist.of(await self.integrations.allowlist(team))

    @routes.delete(
        "/teams/{team_id}/integrations",
        "Deny a bot or prefix again; a denied bot is removed from the team's rooms",
        query=i.IntegrationQuery,
        responses={200: o.Allowlist},
        errors=UNKNOWN_TEAM,
    )
    async def deny_integration(self, request: web.Request, query: i.IntegrationQuery) -> o.Allowlist:
        team = await self._team(request)
        await self.integrations.deny(team, query.value, actor=request[ACTOR])
        return o.Allowlist.of(await self.integrations.allowlist(team))

    @routes.get(
        "/teams/{team_id}/email",
        "Owner, admins, operator: the team's email address (headers only) and whether it is on",
        responses={200: o.EmailAddress},
        errors=UNKNOWN_TEAM,
    )
    async def get_email(self, request: web.Request) -> o.EmailAddress:
        team = await self._team(request)
        return o.EmailAddress.of(await self.email.status(team, actor=request[ACTOR]))

    @routes.put(
        "/teams/{team_id}/email",
        "Owner, admins, operator: switch the team's email address on or off",
        body=i.EmailChange,
        responses={200: o.EmailAddress},
        errors=UNKNOWN_TEAM,
    )
    async def set_email(self, request: web.Request, body: i.EmailChange) -> o.EmailAddress:
        team = await self._team(request)
        return o.EmailAddress.of(await self.email.switch(team, body.enabled, actor=request[ACTOR]))
