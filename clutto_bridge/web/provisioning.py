"""The provisioning API under ``/_clutto/v1``: one handler per endpoint, input checked first."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.db.job import Job
from clutto_bridge.db.team import Team
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.inputs import field as _field
from clutto_bridge.web.inputs import json_object as _json_object
from clutto_bridge.web.middleware import bearer_auth, matrix_errors
from clutto_bridge.web.openapi import openapi_document
from clutto_bridge.web.openid import OpenIDVerifier
from clutto_bridge.web.people import PeopleAPI

PREFIX = "/_clutto/v1"


class ProvisioningAPI:
    def __init__(self, ctx: Services, secret: str) -> None:
        self.teams = ctx.teams
        self.members = ctx.members
        self.rooms = ctx.rooms
        self.integrations = ctx.integrations
        self.details = ctx.details
        self.retention = ctx.retention
        self.lifecycle = ctx.lifecycle
        self.notices = ctx.notices
        self.onboarding = ctx.onboarding
        self.settings = ctx.settings
        self.openid = OpenIDVerifier(ctx.settings.homeserver.address, ctx.settings.homeserver.domain)
        self.app = web.Application(middlewares=[matrix_errors, bearer_auth(secret, self.openid)])
        self.app.cleanup_ctx.append(self._http_session)
        self.app.router.add_get("/openapi.json", self.openapi)
        self.app.router.add_post("/notices", self.send_notice)
        self.app.router.add_get("/teams", self.list_teams)
        self.app.router.add_post("/teams", self.create_team)
        self.app.router.add_get("/teams/{team_id}", self.get_team)
        self.app.router.add_patch("/teams/{team_id}", self.update_team)
        self.app.router.add_delete("/teams/{team_id}", self.delete_team)
        self.app.router.add_post("/teams/{team_id}/members", self.add_member)
        self.app.router.add_put("/teams/{team_id}/members/{user_id}", self.change_role)
        self.app.router.add_delete("/teams/{team_id}/members/{user_id}", self.remove_member)
        self.app.router.add_post("/teams/{team_id}/transfer", self.transfer)
        self.app.router.add_post("/teams/{team_id}/rooms", self.create_room)
        self.app.router.add_delete("/teams/{team_id}/rooms/{room}", self.archive_room)
        self.app.router.add_post("/teams/{team_id}/direct", self.direct_chat)
        self.app.router.add_get("/teams/{team_id}/integrations", self.list_integrations)
        self.app.router.add_post("/teams/{team_id}/integrations", self.allow_integration)
        self.app.router.add_delete("/teams/{team_id}/integrations", self.deny_integration)
        self.app.router.add_get("/teams/{team_id}/consent", self.team_consent)
        self.app.router.add_get("/teams/{team_id}/retention", self.get_retention)
        self.app.router.add_put("/teams/{team_id}/retention", self.set_retention)
        self.app.router.add_post("/teams/{team_id}/retention/preview", self.preview_retention)
        self.app.router.add_post("/teams/{team_id}/retention/sweep", self.sweep)
        self.app.router.add_get("/teams/{team_id}/jobs/{job_id}", self.get_job)
        self.app.router.add_put("/teams/{team_id}/plan", self.set_plan)
        self.app.router.add_put("/teams/{team_id}/export-setting", self.set_export_setting)
        self.app.router.add_post("/teams/{team_id}/exports", self.start_export)
        self.app.router.add_get("/teams/{team_id}/exports/{job_id}/{path:.+}", self.download_export)
        self.app.router.add_put("/teams/{team_id}/hold", self.place_hold)
        self.app.router.add_delete("/teams/{team_id}/hold", self.lift_hold)
        PeopleAPI(ctx).register(self.app.router)

    async def _http_session(self, app: web.Application):
        async with aiohttp.ClientSession() as session:
            self.openid.session = session
            yield
            self.openid.session = None

    async def _team(self, request: web.Request) -> Team:
        """The team in the path; a member (OpenID) may only reach their own teams."""
        team = await self.teams.get(request.match_info["team_id"])
        actor = request["actor"]
        if actor is not None and await self.teams.role_of(team, actor) is None:
            raise ApiError(403, "M_FORBIDDEN", f"{actor} is not a member of this team.")
        return team

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(PREFIX))

    async def send_notice(self, request: web.Request) -> web.Response:
        """Operator: a service notice (always delivered) or marketing (only to who opted in)."""
        body = await _json_object(request)
        report = await self.notices.send(
            _field(body, "kind", str), _field(body, "text", str),
            team_id=_field(body, "team_id", str, default=None), actor=request["actor"],
        )
        return web.json_response(report.to_json())

    async def list_teams(self, request: web.Request) -> web.Response:
        actor = request["actor"]
        teams = await self.teams.all() if actor is None else await self.teams.of_user(actor)
        views = [await self.teams.view(t) for t in teams if actor is None or await self.teams.role_of(t, actor)]
        return web.json_response({"teams": [v.to_json() for v in views]})

    async def create_team(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        name = _field(body, "name", str)
        actor = request["actor"]
        owner = _field(body, "owner", str) if actor is None else _field(body, "owner", str, default=actor)
        if actor is not None and owner != actor:
            raise ApiError(403, "M_FORBIDDEN", "Members create teams that they own themselves.")
        team = await self.teams.create(name, owner)
        view = await self.teams.view(team)
        return web.json_response(view.to_json(), status=201)

    async def get_team(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        return web.json_response((await self.teams.view(team)).to_json())

    async def update_team(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        unknown = set(body) - {"name", "topic", "avatar_url"}
        if unknown or not body:
            raise ApiError(400, "M_INVALID_PARAM", "Send one or more of name, topic, avatar_url." + (f" Unknown: {', '.join(sorted(unknown))}." if unknown else ""))
        team = await self.details.update(
            team, actor=request["actor"], name=_field(body, "name", str, default=None),
            topic=_field(body, "topic", str, default=None), avatar_url=_field(body, "avatar_url", str, default=None),
        )
        return web.json_response((await self.teams.view(team)).to_json())

    async def delete_team(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.details.delete(team, _field(body, "confirm", str), actor=request["actor"])
        return web.json_response({"deleted": team.id})

    async def add_member(self, request: web.Request) -> web.Response:
        """Invite an existing account (``user_id``) or create one (``username``, ``email``, ``password``)."""
        team = await self._team(request)
        body = await _json_object(request)
        role = _field(body, "role", str, default="member")
        if "username" in body:
            member = await self.members.create_account(
                team, _field(body, "username", str), _field(body, "email", str), _field(body, "password", str),
                role, actor=request["actor"],
            )
        else:
            member = await self.members.invite(team, _field(body, "user_id", str), role, actor=request["actor"])
        return web.json_response(_member_json(member), status=201)

    async def change_role(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        member = await self.members.change_role(team, request.match_info["user_id"], _field(body, "role", str), actor=request["actor"])
        return web.json_response(_member_json(member))

    async def remove_member(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        flag = request.query.get("deactivate", "false").lower()
        if flag not in ("true", "false"):
            raise ApiError(400, "M_INVALID_PARAM", "deactivate must be true or false.")
        member = await self.members.remove(team, request.match_info["user_id"], actor=request["actor"], deactivate=flag == "true")
        return web.json_response(_member_json(member))

    async def transfer(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        team = await self.members.transfer(team, _field(body, "user_id", str), actor=request["actor"])
        return web.json_response((await self.teams.view(team)).to_json())

    async def create_room(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        room = await self.rooms.create_group(team, _field(body, "name", str), actor=request["actor"])
        return web.json_response(_room_json(room), status=201)

    async def archive_room(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        room = await self.rooms.archive_group(team, request.match_info["room"], actor=request["actor"])
        return web.json_response(_room_json(room))

    async def direct_chat(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        users = _field(body, "user_ids", list)
        if len(users) != 2 or not all(isinstance(u, str) for u in users):
            raise ApiError(400, "M_INVALID_PARAM", "user_ids must name exactly two members.")
        actor = request["actor"]
        if actor is not None and actor not in users:
            raise ApiError(403, "M_FORBIDDEN", "Members open direct chats for themselves.")
        room, created = await self.rooms.direct_chat(team, users[0], users[1])
        return web.json_response(_room_json(room), status=201 if created else 200)

    async def list_integrations(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        return web.json_response((await self.integrations.allowlist(team)).to_json())

    async def allow_integration(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.integrations.allow(team, _field(body, "value", str), actor=request["actor"])
        return web.json_response((await self.integrations.allowlist(team)).to_json(), status=201)

    async def deny_integration(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        value = request.query.get("value")
        if not value:
            raise ApiError(400, "M_MISSING_PARAM", "Give the bot or widget prefix to deny as ?value=.")
        await self.integrations.deny(team, value, actor=request["actor"])
        return web.json_response((await self.integrations.allowlist(team)).to_json())

    async def _retention_json(self, team: Team) -> dict[str, Any]:
        r = self.retention
        return {
            "max_lifetime_seconds": r.lifetime(team),
            "team_choice_seconds": team.retention_seconds,
            "cutoff": r.cutoff(team),
            "bounds": {"min": r.bounds.min, "max": r.bounds.max, "default": r.bounds.default},
            "purge_available": r.admin_available,
            "holds": sorted(await r.holds(team)),
            "sweeps": [job.to_json() for job in await r.jobs_of(team)],
        }

    async def team_consent(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        members = await self.onboarding.team_status(team, actor=request["actor"])
        consent = self.settings.consent
        return web.json_response({"version": consent.version, "mode": consent.mode, "members": members})

    async def get_retention(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        return web.json_response(await self._retention_json(team))

    async def set_retention(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.retention.set_lifetime(team, _field(body, "max_lifetime", str), actor=request["actor"])
        return web.json_response(await self._retention_json(team))

    async def preview_retention(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        cutoff, rooms = await self.retention.preview(team, actor=request["actor"])
        return web.json_response({
            "cutoff": cutoff,
            "events": sum(r.events for r in rooms),
            "rooms_affected": sum(1 for r in rooms if r.events),
            "rooms": [{"room_id": r.room_id, "name": r.name, "events": r.events, "held": r.held} for r in rooms],
        })

    async def sweep(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        job = await self.retention.request_sweep(team, actor=request["actor"])
        return web.json_response(job.to_json(), status=202)

    async def get_job(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        job = await self._job(request, team)
        if job is None:
            raise ApiError(404, "M_NOT_FOUND", "No such job for this team.")
        return web.json_response(job.to_json())

    async def _job(self, request: web.Request, team: Team) -> Job | None:
        """The job named in the path, if it belongs to the team."""
        try:
            job = await self.retention.jobs.get(int(request.match_info["job_id"]))
        except ValueError:
            return None
        return job if job is not None and job.team_id == team.id else None

    async def set_plan(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.lifecycle.set_plan(team, _field(body, "plan", str), actor=request["actor"])
        return web.json_response((await self.teams.view(team)).to_json())

    async def set_export_setting(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.lifecycle.set_export_before_purge(team, _field(body, "before_purge", bool), actor=request["actor"])
        return web.json_response({"before_purge": team.export_before_purge})

    async def start_export(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        job = await self.lifecycle.request_export(team, actor=request["actor"])
        return web.json_response(job.to_json(), status=202)

    async def download_export(self, request: web.Request) -> web.StreamResponse:
        """A file of a finished export; paths are those of its manifest."""
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
        return web.FileResponse(path)

    async def place_hold(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        body = await _json_object(request)
        await self.retention.place_hold(
            team, _field(body, "room_id", str, default=None), _field(body, "reason", str, default=""),
            actor=request["actor"],
        )
        return web.json_response({"holds": sorted(await self.retention.holds(team))}, status=201)

    async def lift_hold(self, request: web.Request) -> web.Response:
        team = await self._team(request)
        await self.retention.lift_hold(team, request.query.get("room_id"), actor=request["actor"])
        return web.json_response({"holds": sorted(await self.retention.holds(team))})


def _room_json(room) -> dict[str, Any]:
    return {"room_id": room.room_id, "name": room.name, "kind": room.kind, "archived": room.archived_at is not None}


def _member_json(member) -> dict[str, Any]:
    return {"user_id": member.user_id, "role": member.role, "membership": member.membership}
