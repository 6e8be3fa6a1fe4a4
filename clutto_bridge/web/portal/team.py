"""The Customer's pages (a team's owner and admins): members and roles, invite and remove,
retention and its preview, legal holds, exports, the consent overview and the audit log.

Every action goes through the same domain call as the bot command and the API, which checks
the actor's role itself; the page only shows the team to its managers.
"""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.db.team import Team
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import NotFound
from clutto_bridge.durations import format_duration
from clutto_bridge.web.portal import forms as f
from clutto_bridge.web.portal.forms import parse_form
from clutto_bridge.web.portal.member import when
from clutto_bridge.web.portal.pages import Pages

AUDIT_SHOWN = 100


class TeamPages:
    def __init__(self, ctx: Services, audit: AuditLog, pages: Pages) -> None:
        self.ctx = ctx
        self.audit = audit
        self.pages = pages

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/teams/{team_id}", self.overview)
        router.add_post("/teams/{team_id}/role", self.change_role)
        router.add_post("/teams/{team_id}/invite", self.invite)
        router.add_post("/teams/{team_id}/remove", self.remove)
        router.add_post("/teams/{team_id}/retention", self.set_retention)
        router.add_post("/teams/{team_id}/retention/preview", self.preview)
        router.add_post("/teams/{team_id}/hold", self.hold)
        router.add_post("/teams/{team_id}/exports", self.export)
        router.add_get("/teams/{team_id}/exports/{job_id:[0-9]{1,18}}/{path:.+}", self.download)

    async def _team(self, request: web.Request) -> tuple[str, Team]:
        """The signed-in manager and the team in the path; 404 for a team they do not manage
        (whether it exists is not told to others)."""
        user = await self.pages.member(request)
        team_id = request.match_info["team_id"]
        for team in await self.pages.managed_teams(user):
            if team.id == team_id:
                return user, team
        raise NotFound("No team you own or administer has that id.")

    def _back(self, team: Team) -> web.Response:
        return self.pages.back(f"/teams/{team.id}")

    async def overview(self, request: web.Request, preview: dict | None = None) -> web.Response:
        user, team = await self._team(request)
        ctx = self.ctx
        members = sorted(await ctx.members.active(team), key=lambda m: (m.role != "owner", m.user_id))
        rooms = await ctx.teams.room_ids(team)
        entries = await self.audit.for_team(team.id)
        return await self.pages.render(
            request,
            "team.html",
            {
                "team": team,
                "role": await ctx.teams.role_of(team, user),
                "members": members,
                "lifetime": ctx.retention.describe(team),
                "bounds": ctx.retention.bounds,
                "format_duration": format_duration,
                "holds": sorted(h or "the whole team" for h in await ctx.retention.holds(team)),
                "rooms": rooms,
                "exports": await ctx.lifecycle.exports(team, actor=user),
                "when": when,
                "consent": await ctx.onboarding.team_status(team, actor=user),
                "version": ctx.consent.current.version,
                "audit": [
                    (when(e.ts), e.actor or "the bridge", e.action, e.target or "") for e in entries[-AUDIT_SHOWN:]
                ][::-1],
                "preview": preview,
                # SCIM: the tokens (never their secrets) and the identity provider's last actions.
                "scim_tokens": await ctx.scim.tokens(team, actor=user) if ctx.scim else [],
                "scim_actions": [
                    (when(e.ts), e.actor, e.action, e.target or "")
                    for e in entries
                    if (e.actor or "").startswith("scim:")
                ][-10:][::-1],
            },
        )

    async def change_role(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        form = await parse_form(request, f.RoleForm)
        await self.ctx.members.change_role(team, form.user_id, form.role, actor=user)
        return self._back(team)

    async def invite(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        form = await parse_form(request, f.InviteForm)
        await self.ctx.members.invite(team, form.user_id, form.role, actor=user)
        return self._back(team)

    async def remove(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        form = await parse_form(request, f.RemoveForm)
        await self.ctx.members.remove(team, form.user_id, actor=user)
        return self._back(team)

    async def set_retention(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        form = await parse_form(request, f.RetentionForm)
        await self.ctx.retention.set_lifetime(team, form.lifetime, actor=user)
        return self._back(team)

    async def preview(self, request: web.Request) -> web.Response:
        """Counts only; removes nothing. Shown on the team page (a POST because it is work)."""
        user, team = await self._team(request)
        await parse_form(request, f.Form)
        cutoff, rooms = await self.ctx.retention.preview(team, actor=user)
        return await self.overview(
            request,
            preview={
                "cutoff": when(cutoff),
                "events": sum(r.events for r in rooms),
                "rooms": [(r.name or r.room_id, r.events, r.held) for r in rooms],
            },
        )

    async def hold(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        form = await parse_form(request, f.HoldForm)
        room = form.room_id or None
        if form.action == "on":
            await self.ctx.retention.place_hold(team, room, form.reason or "legal hold (portal)", actor=user)
        else:
            await self.ctx.retention.lift_hold(team, room, actor=user)
        return self._back(team)

    async def export(self, request: web.Request) -> web.Response:
        user, team = await self._team(request)
        await parse_form(request, f.Form)
        await self.ctx.lifecycle.request_export(team, actor=user)
        return self._back(team)

    async def download(self, request: web.Request) -> web.StreamResponse:
        """A file of a finished export, as the API serves it; every download is in the audit log."""
        user, team = await self._team(request)
        job = await self.ctx.retention.team_job(team, int(request.match_info["job_id"]))
        if job is None or job.kind != "export" or job.state != "done":
            raise NotFound("No finished export with that id for this team.")
        folder = self.ctx.lifecycle.export_folder(team.id, job.id)
        path = (folder / request.match_info["path"]).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise NotFound("No such file in this export.")
        await self.ctx.lifecycle.downloaded(team, str(path.relative_to(folder)), actor=user)
        return web.FileResponse(path, headers={"Content-Disposition": f'attachment; filename="{path.name}"'})
