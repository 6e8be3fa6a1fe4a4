"""Provisioning API for a team's rooms: group rooms, encryption, direct chats (commands/rooms.py)."""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import Reply, RouteTable
from clutto_bridge.web.team_access import UNKNOWN_TEAM


class RoomsAPI(Endpoints):
    """The rooms of one team."""

    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.rooms = api.services.rooms
        self.encryption = api.services.encryption
        self._team = api.team

    @routes.post(
        "/teams/{team_id}/rooms",
        "Create a group room in the team's space",
        body=i.NewRoom,
        responses={201: o.Room},
        errors={**UNKNOWN_TEAM, 409: "Name taken"},
    )
    async def create_room(self, request: web.Request, body: i.NewRoom) -> o.Room:
        team = await self._team(request)
        return o.Room.of(await self.rooms.create_group(team, body.name, actor=request[ACTOR]))

    @routes.delete(
        "/teams/{team_id}/rooms/{room}",
        "Archive a group room (by id or name): read-only and out of the space",
        responses={200: o.Room},
        errors=UNKNOWN_TEAM,
    )
    async def archive_room(self, request: web.Request) -> o.Room:
        team = await self._team(request)
        return o.Room.of(await self.rooms.archive_group(team, request.match_info["room"], actor=request[ACTOR]))

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
        rooms = await self.encryption.encrypt_team(team, actor=request[ACTOR])
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
        actor = request[ACTOR]
        if actor is not None and actor not in body.user_ids:
            raise ApiError(403, "M_FORBIDDEN", "Members open direct chats for themselves.")
        room, created = await self.rooms.direct_chat(team, body.user_ids[0], body.user_ids[1])
        return Reply(o.Room.of(room), status=201 if created else 200)
