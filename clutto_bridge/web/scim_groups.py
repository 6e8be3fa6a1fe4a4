"""SCIM 2.0 Groups under ``/_clutto/scim/v2/Groups``: the team's roles (``admins``, ``members``,
``guests``; fixed, only their members change) and the groups that are rooms of the team's space
(``domain/scim_rooms.py``; created, changed and deleted by the provider).

Served by ``ScimAPI`` (``web/scim.py``), behind its token and error middleware; the wire format
is ``web/scim_protocol.py``'s.
"""

from __future__ import annotations

import hashlib

from aiohttp import web
from scim2_models import Context, Group, GroupMember, Meta, PatchOp, SearchRequest

from clutto_bridge.domain.scim import GROUPS, ScimService
from clutto_bridge.domain.scim_rooms import RoomGroup
from clutto_bridge.web.scim_protocol import (
    MEDIA_TYPE,
    SCIM_TEAM,
    SCIM_TOKEN,
    ScimError,
    base_url,
    check_if_match,
    dump,
    meta,
    page,
    read_object,
    respond,
    respond_created,
    search_body,
    search_request,
)


class ScimGroups:
    def __init__(self, scim: ScimService) -> None:
        self.scim = scim

    async def _role_resource(self, request: web.Request, group: str) -> Group:
        rows = await self.scim.group_members(request[SCIM_TEAM], group)
        resource = Group(
            id=group,
            display_name=group,
            members=[GroupMember(value=row.id, display=row.user_name, type="User") for row in rows] or None,
        )
        digest = hashlib.sha256(" ".join(sorted(r.id + str(r.version) for r in rows)).encode()).hexdigest()[:16]
        return _with_meta(request, resource, f'W/"{digest}"')

    def _room_resource(self, request: web.Request, group: RoomGroup) -> Group:
        resource = Group(
            id=group.row.id,
            display_name=group.name,
            members=[GroupMember(value=u.id, display=u.user_name, type="User") for u in group.users] or None,
        )
        return _with_meta(request, resource, f'W/"{group.row.version}"')

    async def all_groups(self, request: web.Request) -> list[Group]:
        """Every group of the team: the roles, then the room groups (also for a search at the root)."""
        roles = [await self._role_resource(request, g) for g in GROUPS]
        rooms = await self.scim.room_groups.all(request[SCIM_TEAM])
        return roles + [self._room_resource(request, g) for g in rooms]

    async def _group(self, request: web.Request) -> tuple[Group, RoomGroup | None]:
        """The group of the path: a role group, or a room group (with its row)."""
        group_id = request.match_info["id"]
        if group_id in GROUPS:
            return await self._role_resource(request, group_id), None
        room = await self.scim.room_groups.get(request[SCIM_TEAM], group_id)
        if room is None:
            raise ScimError(404, f"No group {group_id!r} in this team.")
        return self._room_resource(request, room), room

    async def search_groups(self, request: web.Request) -> web.Response:
        return await self.list_groups(request, await search_body(request, Group))

    async def list_groups(self, request: web.Request, search: SearchRequest | None = None) -> web.Response:
        search = search or search_request(request, Group)
        groups = await self.all_groups(request)
        if search.filter is not None:
            groups = [g for g in groups if search.filter.match(g)]
        return page(Group, groups, search)

    async def get_group(self, request: web.Request) -> web.Response:
        group, _ = await self._group(request)
        return respond(
            dump(group, Context.RESOURCE_QUERY_RESPONSE, search_request(request, Group)),
            etag=meta(group).version,
        )

    async def create_group(self, request: web.Request) -> web.Response:
        """A new group is a new room of the team's space (or the room of a name in scim.room_groups)."""
        body = await read_object(request, "a Group")
        group = Group.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        if not group.display_name or not group.display_name.strip():
            raise ScimError(400, "displayName is required: it is the room's name.", "invalidValue")
        token = request[SCIM_TOKEN]
        created = await self.scim.room_groups.create(
            request[SCIM_TEAM], group.display_name, _member_ids(group), actor=self.scim.actor(token)
        )
        resource = self._room_resource(request, created)
        return respond_created(resource)

    async def delete_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        if room is None:
            raise ScimError(403, "The groups admins, members and guests are the team's roles and cannot be deleted.")
        check_if_match(request, meta(current).version)
        await self.scim.room_groups.delete(request[SCIM_TEAM], room.row, actor=self.scim.actor(request[SCIM_TOKEN]))
        return web.Response(status=204, headers={"Content-Type": MEDIA_TYPE})

    async def replace_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        check_if_match(request, meta(current).version)
        body = await read_object(request, "a Group")
        group = Group.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        if group.display_name and group.display_name != current.display_name:
            raise ScimError(400, "A group's displayName cannot change (it is a role or a room).", "mutability")
        return await self._set_members(request, current, room, group)

    async def patch_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        check_if_match(request, meta(current).version)
        name = current.display_name
        body = await read_object(request, "a PatchOp")
        patch = PatchOp[Group].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        patch.patch(current)
        if current.display_name != name:
            raise ScimError(400, "A group's displayName cannot change (it is a role or a room).", "mutability")
        return await self._set_members(request, current, room, current)

    async def _set_members(
        self, request: web.Request, current: Group, room: RoomGroup | None, group: Group
    ) -> web.Response:
        team, token = request[SCIM_TEAM], request[SCIM_TOKEN]
        if room is None:
            assert current.id is not None, "every group this module builds has its id"
            await self.scim.set_group(team, current.id, _member_ids(group), token)
            updated = await self._role_resource(request, current.id)
        else:
            await self.scim.room_groups.set_members(team, room.row, _member_ids(group), actor=self.scim.actor(token))
            fresh = await self.scim.room_groups.get(team, room.row.id)
            assert fresh is not None, "not deleted by a change of members"
            updated = self._room_resource(request, fresh)
        return respond(dump(updated, Context.RESOURCE_REPLACEMENT_RESPONSE), etag=meta(updated).version)


def _with_meta(request: web.Request, resource: Group, version: str) -> Group:
    location = f"{base_url(request)}/Groups/{resource.id}"
    resource.meta = Meta(resource_type="Group", version=version, location=location)
    return resource


def _member_ids(group: Group) -> set[str]:
    return {m.value for m in group.members or [] if m.value}


__all__ = ["ScimGroups"]
