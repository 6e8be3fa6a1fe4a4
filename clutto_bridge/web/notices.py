"""Provisioning API for the operator's notices to members: service notices and marketing."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RouteTable


class NoticesAPI(Endpoints):
    """Messages from the operator, delivered to members' chats with the bot."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.notices = api.services.notices

    @routes.post(
        "/notices",
        "Operator: send a service notice (reaches every member) or marketing (only members who opted in)",
        body=i.NewNotice,
        responses={200: o.NoticeReport},
        errors={403: "Not the operator", 404: "Unknown team"},
    )
    async def send_notice(self, request: web.Request, body: i.NewNotice) -> o.NoticeReport:
        report = await self.notices.send(body.kind, body.text, team_id=body.team_id, actor=request[ACTOR])
        return o.NoticeReport.of(report)
