"""Provisioning API for what the Customer governs: retention, legal holds, plan, export, consent overview."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.db.job import Job
from clutto_bridge.db.team import Team
from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.signatures import file_digest
from clutto_bridge.web.team_access import UNKNOWN_TEAM, TeamAccess

NO_JOB = {**UNKNOWN_TEAM, 404: "Unknown team or job"}


class GovernanceAPI:
    routes = RouteTable()

    def __init__(self, ctx: Services, team: TeamAccess) -> None:
        self.teams = ctx.teams
        self.retention = ctx.retention
        self.lifecycle = ctx.lifecycle
        self.onboarding = ctx.onboarding
        self.settings = ctx.settings
        self._team = team

    @routes.get(
        "/teams/{team_id}/consent",
        "Owner, admins, operator: who in the team accepted the current policy, and who block mode holds back",
        responses={200: o.TeamConsent},
        errors=UNKNOWN_TEAM,
    )
    async def team_consent(self, request: web.Request) -> o.TeamConsent:
        team = await self._team(request)
        members = await self.onboarding.team_status(team, actor=request["actor"])
        consent = self.settings.consent
        return o.TeamConsent(
            version=consent.version, mode=consent.mode, members=[o.MemberConsent.model_validate(m) for m in members]
        )

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
            await self.retention.set_lifetime(team, body.max_lifetime, actor=request["actor"])
        if body.redact is not None:
            await self.retention.set_redact_mode(team, body.redact, actor=request["actor"])
        return await self._retention(team)

    @routes.post(
        "/teams/{team_id}/retention/preview",
        "Count what a sweep would remove now, per room; removes nothing",
        responses={200: o.RetentionPreview},
        errors=UNKNOWN_TEAM,
    )
    async def preview_retention(self, request: web.Request) -> o.RetentionPreview:
        team = await self._team(request)
        cutoff, rooms = await self.retention.preview(team, actor=request["actor"])
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
        return o.Job.of(await self.retention.request_sweep(team, actor=request["actor"]))

    @routes.get(
        "/teams/{team_id}/jobs/{job_id}",
        "A job of the team with its progress",
        responses={200: o.Job},
        errors=NO_JOB,
    )
    async def get_job(self, request: web.Request) -> o.Job:
        team = await self._team(request)
        job = await self._job(request, team)
        if job is None:
            raise ApiError(404, "M_NOT_FOUND", "No such job for this team.")
        return o.Job.of(job)

    async def _job(self, request: web.Request, team: Team) -> Job | None:
        """The job named in the path, if it belongs to the team."""
        raw = request.match_info["job_id"]
        if not raw.isdigit() or len(raw) > 19:  # job ids are positive 64-bit integers
            return None
        return await self.retention.team_job(team, int(raw))

    @routes.put(
        "/teams/{team_id}/plan",
        "Set the team's plan (operator only): trial teams are purged after trial and grace",
        body=i.PlanChange,
        responses={200: o.Team},
        errors=UNKNOWN_TEAM,
    )
    async def set_plan(self, request: web.Request, body: i.PlanChange) -> o.Team:
        team = await self._team(request)
        await self.lifecycle.set_plan(team, body.plan, actor=request["actor"])
        return o.Team.of(await self.teams.view(team))

    @routes.put(
        "/teams/{team_id}/export-setting",
        "Whether the team is exported before a destructive purge",
        body=i.ExportSettingChange,
        responses={200: o.ExportSetting},
        errors=UNKNOWN_TEAM,
    )
    async def set_export_setting(self, request: web.Request, body: i.ExportSettingChange) -> o.ExportSetting:
        team = await self._team(request)
        await self.lifecycle.set_export_before_purge(team, body.before_purge, actor=request["actor"])
        return o.ExportSetting(before_purge=team.export_before_purge)

    @routes.post(
        "/teams/{team_id}/exports",
        "Start an export (messages as JSON lines per room, media, members, manifest with SHA-256); "
        "poll /teams/{team_id}/jobs/{job_id}",
        responses={202: o.Job},
        errors=UNKNOWN_TEAM,
    )
    async def start_export(self, request: web.Request) -> o.Job:
        team = await self._team(request)
        return o.Job.of(await self.lifecycle.request_export(team, actor=request["actor"]))

    @routes.get(
        "/teams/{team_id}/exports/{job_id}/{path:.+}",
        "Download one file of a finished export (manifest.json lists them)",
        responses={200: o.ExportFile},
        files=frozenset({200}),
        errors={**UNKNOWN_TEAM, 404: "Unknown export or file"},
    )
    async def download_export(self, request: web.Request) -> web.StreamResponse:
        """Paths are those of the export's manifest; nothing outside the export's folder is served."""
        team = await self._team(request)
        await self.teams.require_manager(team, request["actor"])
        job = await self._job(request, team)
        if job is None or job.kind != "export" or job.state != "done":
            raise ApiError(404, "M_NOT_FOUND", "No finished export with that id for this team.")
        folder = self.lifecycle.export_folder(team.id, job.id)
        path = (folder / request.match_info["path"]).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise ApiError(404, "M_NOT_FOUND", "No such file in this export.")
        await self.lifecycle.downloaded(team, str(path.relative_to(folder)), actor=request["actor"])
        # Signed like every response: the digest of the whole file, which a 200 sends.
        return web.FileResponse(path, headers={"Content-Digest": await file_digest(path)})

    @routes.put(
        "/teams/{team_id}/hold",
        "Place a legal hold on the team (no room_id) or one of its rooms",
        body=i.NewHold,
        responses={201: o.Holds},
        errors={**UNKNOWN_TEAM, 409: "Already held"},
    )
    async def place_hold(self, request: web.Request, body: i.NewHold) -> o.Holds:
        team = await self._team(request)
        await self.retention.place_hold(team, body.room_id, body.reason, actor=request["actor"])
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
        await self.retention.lift_hold(team, query.room_id, actor=request["actor"])
        return o.Holds(holds=sorted(await self.retention.holds(team)))
