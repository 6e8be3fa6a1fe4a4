"""The provisioning API under ``/_clutto/v1``: one handler per endpoint, input checked first.

Every endpoint is declared in a route table (``web/routes.py``) with its body and response
models; the same tables build the router and the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.matrix.openid import OpenIDVerifier
from clutto_bridge.metrics import Metrics
from clutto_bridge.promises import check
from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.governance import GovernanceAPI
from clutto_bridge.web.keys import KeysAPI
from clutto_bridge.web.metrics import count_requests
from clutto_bridge.web.middleware import bearer_auth, matrix_errors
from clutto_bridge.web.openapi import openapi_document
from clutto_bridge.web.people import PeopleAPI
from clutto_bridge.web.reports import ReportsAPI
from clutto_bridge.web.routes import Reply, Route, RouteTable
from clutto_bridge.web.signatures import signing_hook
from clutto_bridge.web.team_access import UNKNOWN_TEAM, TeamAccess

PREFIX = "/_clutto/v1"

routes = RouteTable()


class ProvisioningAPI:
    def __init__(self, ctx: Services, secret: str, metrics: Metrics | None = None, *, keys: SigningKeys) -> None:
        self.teams = ctx.teams
        self.members = ctx.members
        self.rooms = ctx.rooms
        self.encryption = ctx.encryption
        self.integrations = ctx.integrations
        self.email = ctx.email
        self.details = ctx.details
        self.notices = ctx.notices
        self.settings = ctx.settings
        self.scim = ctx.scim
        self._team = TeamAccess(ctx)
        self.openid = OpenIDVerifier(ctx.settings.homeserver.address, ctx.settings.homeserver.domain)
        middlewares = [matrix_errors, bearer_auth(secret, self.openid)]
        if metrics is not None:
            metrics.allow("route", (PREFIX + route.template for route in all_routes()))
            middlewares.insert(0, count_requests(metrics, PREFIX))
        self.app = web.Application(middlewares=middlewares)
        self.app.on_response_prepare.append(signing_hook(MessageSigner(keys)))
        self.app.cleanup_ctx.append(self._http_session)
        routes.register(self.app.router, self)
        GovernanceAPI.routes.register(self.app.router, GovernanceAPI(ctx, self._team))
        PeopleAPI.routes.register(self.app.router, PeopleAPI(ctx))
        ReportsAPI.routes.register(self.app.router, ReportsAPI(ctx))
        KeysAPI.routes.register(self.app.router, KeysAPI(keys))
        self.document = openapi_document(PREFIX, all_routes())

    async def _http_session(self, app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            self.openid.session = session
            yield
            self.openid.session = None

    @routes.get("/openapi.json", "This document", responses={200: o.OpenAPIDocument})
    async def openapi(self, request: web.Request) -> o.OpenAPIDocument:
        return o.OpenAPIDocument(self.document)

    @routes.post(
        "/notices",
        "Operator: send a service notice (reaches every member) or marketing (only members who opted in)",
        body=i.NewNotice,
        responses={200: o.NoticeReport},
        errors={403: "Not the operator", 404: "Unknown team"},
    )
    async def send_notice(self, request: web.Request, body: i.NewNotice) -> o.NoticeReport:
        report = await self.notices.send(body.kind, body.text, team_id=body.team_id, actor=request["actor"])
        return o.NoticeReport.of(report)

    @routes.get(
        "/promises",
        "Operator: every privacy promise as kept, weakened by a named setting, or not yet enforced",
        responses={200: o.PromiseReport},
        errors={403: "Not the operator"},
    )
    async def promises(self, request: web.Request) -> o.PromiseReport:
        """The compliance report of `clutto-bridge promises -c config.yaml` for the running configuration.

        The homeserver's own settings are not checked here; the CLI does with `--homeserver-config`."""
        if request["actor"] is not None:
            raise ApiError(403, "M_FORBIDDEN", "Only the operator may read the compliance report.")
        return o.PromiseReport.of(check(self.settings))

    @routes.get("/teams", "List teams (a member: their own)", responses={200: o.TeamList})
    async def list_teams(self, request: web.Request) -> o.TeamList:
        actor = request["actor"]
        teams = await self.teams.all() if actor is None else await self.teams.of_user(actor)
        views = [await self.teams.view(t) for t in teams if actor is None or await self.teams.role_of(t, actor)]
        return o.TeamList(teams=[o.Team.of(v) for v in views])

    @routes.post(
        "/teams",
        "Create a team (space and default rooms) owned by a local user",
        body=i.NewTeam,
        responses={201: o.Team},
        errors={
            403: "Owner is not on this homeserver, or a member creating for someone else",
            404: "Owner does not exist",
            409: "A team with this name exists (errcode IO.CLUTTO.TEAM_EXISTS)",
        },
    )
    async def create_team(self, request: web.Request, body: i.NewTeam) -> o.Team:
        actor = request["actor"]
        owner = body.owner if body.owner is not None else actor
        if owner is None:
            raise ApiError(400, "M_MISSING_PARAM", "Missing field 'owner'.")
        if actor is not None and owner != actor:
            raise ApiError(403, "M_FORBIDDEN", "Members create teams that they own themselves.")
        team = await self.teams.create(body.name, owner)
        return o.Team.of(await self.teams.view(team))

    @routes.get("/teams/{team_id}", "One team with its rooms and members", responses={200: o.Team}, errors=UNKNOWN_TEAM)
    async def get_team(self, request: web.Request) -> o.Team:
        team = await self._team(request)
        return o.Team.of(await self.teams.view(team))

    @routes.patch(
        "/teams/{team_id}",
        "Change the team's name, topic or avatar (mxc:// URL)",
        body=i.TeamChange,
        responses={200: o.Team},
        errors={**UNKNOWN_TEAM, 409: "Name taken"},
    )
    async def update_team(self, request: web.Request, body: i.TeamChange) -> o.Team:
        team = await self._team(request)
        if not body.model_fields_set:
            raise ApiError(400, "M_INVALID_PARAM", "Send one or more of name, topic, avatar_url.")
        team = await self.details.update(
            team,
            actor=request["actor"],
            name=body.name,
            topic=body.topic,
            avatar_url=body.avatar_url,
        )
        return o.Team.of(await self.teams.view(team))

    @routes.delete(
        "/teams/{team_id}",
        "Delete the team: space and rooms deleted with purge on the homeserver, rows removed",
        body=i.TeamDeletion,
        responses={200: o.Deleted},
        errors=UNKNOWN_TEAM,
    )
    async def delete_team(self, request: web.Request, body: i.TeamDeletion) -> o.Deleted:
        team = await self._team(request)
        await self.details.delete(team, body.confirm, actor=request["actor"])
        return o.Deleted(deleted=team.id)

    @routes.post(
        "/teams/{team_id}/members",
        "Add a member: invite an existing account (user_id) or create one (username, email, password)",
        body=i.NewMember,
        responses={201: o.Member},
        errors={**UNKNOWN_TEAM, 409: "Already a member, or the account exists"},
    )
    async def add_member(self, request: web.Request, body: i.NewMember) -> o.Member:
        team = await self._team(request)
        new = body.root
        if isinstance(new, i.NewAccount):
            member = await self.members.create_account(
                team,
                new.username,
                new.email,
                new.password,
                new.role,
                actor=request["actor"],
            )
        else:
            member = await self.members.invite(team, new.user_id, new.role, actor=request["actor"])
        return o.Member.of(member)

    @routes.put(
        "/teams/{team_id}/members/{user_id}",
        "Change a member's role (power levels follow in every team room)",
        body=i.RoleChange,
        responses={200: o.Member},
        errors={**UNKNOWN_TEAM, 409: "Already that role"},
    )
    async def change_role(self, request: web.Request, body: i.RoleChange) -> o.Member:
        team = await self._team(request)
        member = await self.members.change_role(team, request.match_info["user_id"], body.role, actor=request["actor"])
        return o.Member.of(member)

    @routes.delete(
        "/teams/{team_id}/members/{user_id}",
        "Remove a member: kicked from the space, rooms and individual chats",
        query=i.RemovalQuery,
        responses={200: o.Member},
        errors=UNKNOWN_TEAM,
    )
    async def remove_member(self, request: web.Request, query: i.RemovalQuery) -> o.Member:
        team = await self._team(request)
        member = await self.members.remove(
            team,
            request.match_info["user_id"],
            actor=request["actor"],
            deactivate=query.deactivate,
        )
        return o.Member.of(member)

    @routes.post(
        "/teams/{team_id}/transfer",
        "Transfer ownership to another member; the old owner becomes admin",
        body=i.Transfer,
        responses={200: o.Team},
        errors=UNKNOWN_TEAM,
    )
    async def transfer(self, request: web.Request, body: i.Transfer) -> o.Team:
        team = await self._team(request)
        team = await self.members.transfer(team, body.user_id, actor=request["actor"])
        return o.Team.of(await self.teams.view(team))

    @routes.post(
        "/teams/{team_id}/rooms",
        "Create a group room in the team's space",
        body=i.NewRoom,
        responses={201: o.Room},
        errors={**UNKNOWN_TEAM, 409: "Name taken"},
    )
    async def create_room(self, request: web.Request, body: i.NewRoom) -> o.Room:
        team = await self._team(request)
        return o.Room.of(await self.rooms.create_group(team, body.name, actor=request["actor"]))

    @routes.delete(
        "/teams/{team_id}/rooms/{room}",
        "Archive a group room (by id or name): read-only and out of the space",
        responses={200: o.Room},
        errors=UNKNOWN_TEAM,
    )
    async def archive_room(self, request: web.Request) -> o.Room:
        team = await self._team(request)
        return o.Room.of(await self.rooms.archive_group(team, request.match_info["room"], actor=request["actor"]))

    @routes.post(
        "/teams/{team_id}/encryption",
        "Owner, admins, operator: turn end-to-end encryption on in every team room without it",
        responses={200: o.EncryptedRooms},
        errors={**UNKNOWN_TEAM, 403: "Not the owner or an admin, or policy.encryption is off"},
    )
    async def encrypt_rooms(self, request: web.Request) -> o.EncryptedRooms:
        """Matrix cannot turn a room's encryption off again: the owner is told first, in their chat
        with the bot, which rooms and that it cannot be undone. Rooms encrypted already are left as
        they are, so a repeat changes nothing."""
        team = await self._team(request)
        rooms = await self.encryption.encrypt_team(team, actor=request["actor"])
        return o.EncryptedRooms(encrypted=[o.Room.of(room) for room in rooms])

    @routes.post(
        "/teams/{team_id}/direct",
        "Create (or return) the direct chat between two members of the team",
        body=i.DirectChat,
        responses={201: o.Room, 200: o.Room},
        errors=UNKNOWN_TEAM,
    )
    async def direct_chat(self, request: web.Request, body: i.DirectChat) -> Reply:
        team = await self._team(request)
        actor = request["actor"]
        if actor is not None and actor not in body.user_ids:
            raise ApiError(403, "M_FORBIDDEN", "Members open direct chats for themselves.")
        room, created = await self.rooms.direct_chat(team, body.user_ids[0], body.user_ids[1])
        return Reply(o.Room.of(room), status=201 if created else 200)

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
        await self.integrations.allow(team, body.value, actor=request["actor"])
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
        await self.integrations.deny(team, query.value, actor=request["actor"])
        return o.Allowlist.of(await self.integrations.allowlist(team))

    @routes.get(
        "/teams/{team_id}/email",
        "Owner, admins, operator: the team's email address (headers only) and whether it is on",
        responses={200: o.EmailAddress},
        errors=UNKNOWN_TEAM,
    )
    async def get_email(self, request: web.Request) -> o.EmailAddress:
        team = await self._team(request)
        return o.EmailAddress.of(await self.email.status(team, actor=request["actor"]))

    @routes.put(
        "/teams/{team_id}/email",
        "Owner, admins, operator: switch the team's email address on or off",
        body=i.EmailChange,
        responses={200: o.EmailAddress},
        errors=UNKNOWN_TEAM,
    )
    async def set_email(self, request: web.Request, body: i.EmailChange) -> o.EmailAddress:
        team = await self._team(request)
        return o.EmailAddress.of(await self.email.switch(team, body.enabled, actor=request["actor"]))

    @routes.get(
        "/teams/{team_id}/scim/tokens",
        "Owner, admins, operator: the team's SCIM tokens (never their secrets)",
        responses={200: o.ScimTokenList},
        errors=UNKNOWN_TEAM,
    )
    async def list_scim_tokens(self, request: web.Request) -> o.ScimTokenList:
        team = await self._team(request)
        tokens = await self.scim.tokens(team, actor=request["actor"])
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
        token, secret = await self.scim.new_token(team, body.name, actor=request["actor"])
        return o.ScimTokenCreated.created(token, secret)

    @routes.delete(
        "/teams/{team_id}/scim/tokens/{token_id}",
        "Owner, admins, operator: revoke a SCIM token",
        responses={200: o.ScimToken},
        errors={**UNKNOWN_TEAM, 409: "Revoked already"},
    )
    async def revoke_scim_token(self, request: web.Request) -> o.ScimToken:
        team = await self._team(request)
        return o.ScimToken.of(
            await self.scim.revoke_token(team, request.match_info["token_id"], actor=request["actor"])
        )

    def _scim_base(self) -> str:
        return self.settings.appservice.url.rstrip("/") + "/_clutto/scim/v2"


def all_routes() -> list[Route]:
    """Every endpoint of the provisioning API, in the order they are routed."""
    return [
        *routes.routes,
        *GovernanceAPI.routes.routes,
        *PeopleAPI.routes.routes,
        *ReportsAPI.routes.routes,
        *KeysAPI.routes.routes,
    ]
