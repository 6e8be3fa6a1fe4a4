"""Provisioning API for a team's SCIM tokens (commands/scim.py); SCIM itself is served by web/scim.py."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class ScimTokensAPI(Endpoints):
    """The tokens a team's identity provider uses, never their secrets after they are made."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.scim = api.services.scim
        self.settings = api.services.settings
        self._team = api.team

    @routes.get(
        "/teams/{team_id}/scim/tokens",
        "Owner, admins, operator: the team's SCIM tokens (never their secrets)",
        responses={200: o.ScimTokenList},
        errors=UNKNOWN_TEAM,
    )
    async def list_scim_tokens(self, request: web.Request) -> o.ScimTokenList:
        team = await self._team(request)
        tokens = await self.scim.tokens(team, actor=request[ACTOR])
        return o.ScimTokenList(tokens=[o.ScimToken.of(t) for t in tokens], base_url=self._scim_base())

    @routes.post(
        "/teams/{team_id}/scim/tokens",
        "Owner, admins, operator: a new SCIM token for the team's identity provider",
        body=i.NewScimToken,
        responses={201: o.ScimTokenCreated},
        errors={**UNKNOWN_TEAM, 409: "A live token has this name"},
    )
    async def new_scim_token(self, request: web.Request, body: i.NewScimToken) -> o.ScimTokenCreated:
        """The token is in this answer only; Clutto keeps a SHA-256 of it. See docs/admins/scim.md."""
        team = await self._team(request)
        token, secret = await self.scim.new_token(team, body.name, actor=request[ACTOR])
        return o.ScimTokenCreated.created(token, secret)

    @routes.delete(
        "/teams/{team_id}/scim/tokens/{token_id}",
        "Owner, admins, operator: revoke a SCIM token",
        responses={200: o.ScimToken},
        errors={**UNKNOWN_TEAM, 409: "Revoked already"},
    )
    async def revoke_scim_token(self, request: web.Request) -> o.ScimToken:
        team = await self._team(request)
        return o.ScimToken.of(await self.scim.revoke_token(team, request.match_info["token_id"], actor=request[ACTOR]))

    def _scim_base(self) -> str:
        return self.settings.appservice.url.rstrip("/") + "/_clutto/scim/v2"
