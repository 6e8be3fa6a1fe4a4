"""Provisioning API for a team's exports: start one, download its files, export before a purge
(commands/export.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable
from clutto_bridge.web.signatures import file_digest
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class ExportAPI(Endpoints):
    """A team's data as files, with a manifest of SHA-256 sums."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.teams = api.services.teams
        self.lifecycle = api.services.lifecycle
        self._team = api.team

    @routes.put(
        "/teams/{team_id}/export-setting",
        "Whether the team is exported before a destructive purge",
        body=i.ExportSettingChange,
        responses={200: o.ExportSetting},
        errors=UNKNOWN_TEAM,
    )
    async def set_export_setting(self, request: web.Request, body: i.ExportSettingChange) -> o.ExportSetting:
        team = await self._team(request)
        await self.lifecycle.set_export_before_purge(team, body.before_purge, actor=request[ACTOR])
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
        return o.Job.of(await self.lifecycle.request_export(team, actor=request[ACTOR]))

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
        await self.teams.require_manager(team, request[ACTOR])
        job = await self._team.job(request, team)
        if job is None or job.kind != "export" or job.state != "done":
            raise ApiError(404, "M_NOT_FOUND", "No finished export with that id for this team.")
        folder = self.lifecycle.export_folder(team.id, job.id)
        path = (folder / request.match_info["path"]).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise ApiError(404, "M_NOT_FOUND", "No such file in this export.")
        await self.lifecycle.downloaded(team, str(path.relative_to(folder)), actor=request[ACTOR])
        # Signed like every response: the digest of the whole file, which a 200 sends.
        return web.FileResponse(path, headers={"Content-Digest": await file_digest(path)})
