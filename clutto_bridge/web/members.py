"""Provisioning API for a team's members: add, change roles, remove, transfer ownership, and
who accepted the policy (commands/members.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class MembersAPI(Endpoints):
    """The people of one team and their roles."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.teams = api.services.teams
        self.members = api.services.members
        self.onboarding = api.services.onboarding
        self.settings = api.services.settings
        self._team = api.team

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
                actor=request[ACTOR],
            )
        else:
            member = await self.members.invite(team, new.user_id, new.role, actor=request[ACTOR])
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
        member = await self.members.change_role(team, request.match_info["user_id"], body.role, actor=request[ACTOR])
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
            actor=request[ACTOR],
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
        team = await self.members.transfer(team, body.user_id, actor=request[ACTOR])
        return o.Team.of(await self.teams.view(team))

    @routes.get(
        "/teams/{team_id}/consent",
        "Owner, admins, operator: who in the team accepted the current policy, and who block mode holds back",
        responses={200: o.TeamConsent},
        errors=UNKNOWN_TEAM,
    )
    async def team_consent(self, request: web.Request) -> o.TeamConsent:
        team = await self._team(request)
        members = await self.onboarding.team_status(team, actor=request[ACTOR])
        consent = self.settings.consent
        return o.TeamConsent(
            version=consent.version, mode=consent.mode, members=[o.MemberConsent.model_validate(m) for m in members]
        )
