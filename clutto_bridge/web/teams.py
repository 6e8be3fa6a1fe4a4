"""Provisioning API for teams: list, create, show, change, delete, and the plan (commands/team.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class TeamsAPI(Endpoints):
    """A team as a whole; its members, rooms and settings have their own modules."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.teams = api.services.teams
        self.details = api.services.details
        self.lifecycle = api.services.lifecycle
        self._team = api.team

    @routes.get("/teams", "List teams (a member: their own)", responses={200: o.TeamList})
    async def list_teams(self, request: web.Request) -> o.TeamList:
        actor = request[ACTOR]
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
        actor = request[ACTOR]
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
            actor=request[ACTOR],
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
        await self.details.delete(team, body.confirm, actor=request[ACTOR])
        return o.Deleted(deleted=team.id)

    @routes.put(
        "/teams/{team_id}/plan",
        "Set the team's plan (operator only): trial teams are purged after trial and grace",
        body=i.PlanChange,
        responses={200: o.Team},
        errors=UNKNOWN_TEAM,
    )
    async def set_plan(self, request: web.Request, body: i.PlanChange) -> o.Team:
        team = await self._team(request)
        await self.lifecycle.set_plan(team, body.plan, actor=request[ACTOR])
        return o.Team.of(await self.teams.view(team))
