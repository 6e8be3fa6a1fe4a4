"""Provisioning API for retention: lifetime, redaction, preview, sweeps and their jobs, legal
holds (commands/retention.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.db.team import Team
from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.team_access import NO_JOB, UNKNOWN_TEAM


class RetentionAPI(Endpoints):
    """How long a team's messages are kept, and what holds them longer."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.retention = api.services.retention
        self._team = api.team

    @routes.get(
        "/teams/{team_id}/retention",
        "The team's message lifetime, cutoff, bounds, holds, recent sweeps and the bot's keys per room",
        responses={200: o.Retention},
        errors=UNKNOWN_TEAM,
    )
    async def get_retention(self, request: web.Request) -> o.Retention:
        team = await self._team(request)
        return await self._retention(team)

    @routes.put(
        "/teams/{team_id}/retention",
        "Set the team's maximum message lifetime and when sweeps redact, within the operator's bounds",
        body=i.RetentionChange,
        responses={200: o.Retention},
        errors=UNKNOWN_TEAM,
    )
    async def set_retention(self, request: web.Request, body: i.RetentionChange) -> o.Retention:
        team = await self._team(request)
        if body.redact is not None:
            self.retention.check_redact_mode(body.redact)  # refuse before anything changes
        if body.max_lifetime is not None:
            await self.retention.set_lifetime(team, body.max_lifetime, actor=request[ACTOR])
        if body.redact is not None:
            await self.retention.set_redact_mode(team, body.redact, actor=request[ACTOR])
        return await self._retention(team)

    @routes.post(
        "/teams/{team_id}/retention/preview",
        "Count what a sweep would remove now, per room; removes nothing",
        responses={200: o.RetentionPreview},
        errors=UNKNOWN_TEAM,
    )
    async def preview_retention(self, request: web.Request) -> o.RetentionPreview:
        team = await self._team(request)
        cutoff, rooms = await self.retention.preview(team, actor=request[ACTOR])
        return o.RetentionPreview(
            cutoff=cutoff,
            events=sum(r.events for r in rooms),
            rooms_affected=sum(1 for r in rooms if r.events),
            rooms=[o.RoomPreview.of(r) for r in rooms],
        )

    @routes.post(
        "/teams/{team_id}/retention/sweep",
        "Queue a sweep now (or return the one already queued)",
        responses={202: o.Job},
        errors=UNKNOWN_TEAM,
    )
    async def sweep(self, request: web.Request) -> o.Job:
        team = await self._team(request)
        return o.Job.of(await self.retention.request_sweep(team, actor=request[ACTOR]))

    @routes.get(
        "/teams/{team_id}/jobs/{job_id}",
        "A job of the team with its progress",
        responses={200: o.Job},
        errors=NO_JOB,
    )
    async def get_job(self, request: web.Request) -> o.Job:
        team = await self._team(request)
        job = await self._team.job(request, team)
        if job is None:
            raise ApiError(404, "M_NOT_FOUND", "No such job for this team.")
        return o.Job.of(job)

    @routes.put(
        "/teams/{team_id}/hold",
        "Place a legal hold on the team (no room_id) or one of its rooms",
        body=i.NewHold,
        responses={201: o.Holds},
        errors={**UNKNOWN_TEAM, 409: "Already held"},
    )
    async def place_hold(self, request: web.Request, body: i.NewHold) -> o.Holds:
        team = await self._team(request)
        await self.retention.place_hold(team, body.room_id, body.reason, actor=request[ACTOR])
        return o.Holds(holds=sorted(await self.retention.holds(team)))

    @routes.delete(
        "/teams/{team_id}/hold",
        "Lift a legal hold (room_id query parameter for a room's hold)",
        query=i.HoldQuery,
        responses={200: o.Holds},
        errors={**UNKNOWN_TEAM, 404: "No such hold"},
    )
    async def lift_hold(self, request: web.Request, query: i.HoldQuery) -> o.Holds:
        team = await self._team(request)
        await self.retention.lift_hold(team, query.room_id, actor=request[ACTOR])
        return o.Holds(holds=sorted(await self.retention.holds(team)))

    async def _retention(self, team: Team) -> o.Retention:
        r = self.retention
        return o.Retention(
            max_lifetime_seconds=r.lifetime(team),
            team_choice_seconds=team.retention_seconds,
            cutoff=r.cutoff(team),
            bounds=o.RetentionBounds.of(r.bounds),
            purge_available=r.admin_available,
            redact=str(r.redact_mode(team)),
            team_redact=team.redact,
            operator_redact=str(r.operator_redact),
            holds=sorted(await r.holds(team)),
            sweeps=[o.Job.of(job) for job in await r.jobs_of(team)],
            sessions=[o.RoomSessions.of(room) for room in await r.session_counts(team)],
        )
