"""Who may reach a team through the API: the operator any, a member (OpenID) only their own."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.db.job import Job
from clutto_bridge.db.team import Team
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR

# The refusals every endpoint under /teams/{team_id} may answer with.
UNKNOWN_TEAM = {404: "Unknown team", 403: "Not a member of this team, or not allowed by your role"}
NO_JOB = {**UNKNOWN_TEAM, 404: "Unknown team or job"}


class TeamAccess:
    """The team in the path; a member (OpenID) may only reach their own teams."""

    def __init__(self, ctx: Services) -> None:
        self.teams = ctx.teams
        self.retention = ctx.retention

    async def __call__(self, request: web.Request) -> Team:
        team = await self.teams.get(request.match_info["team_id"])
        actor = request[ACTOR]
        if actor is not None and await self.teams.role_of(team, actor) is None:
            raise ApiError(403, "M_FORBIDDEN", f"{actor} is not a member of this team.")
        return team

    async def job(self, request: web.Request, team: Team) -> Job | None:
        """The job named in the path (sweeps and exports alike), if it belongs to ``team``."""
        raw = request.match_info["job_id"]
        if not raw.isdigit() or len(raw) > 19:  # job ids are positive 64-bit integers
            return None
        return await self.retention.team_job(team, int(raw))
