"""SCIM 2.0 (RFC 7643/7644) under ``/_clutto/scim/v2``: a team's identity provider manages its
members (Users) and roles (Groups).

Resources, filters, PATCH and error bodies are scim2-models'; the tolerant ``ScimPolicy``
below accepts what Entra ID and Okta really send (unknown attributes dropped, capitalised ops,
string booleans, PATCH without a path). The declared schema holds only what Clutto keeps (P2/P3),
so a provider sees which attributes are supported; everything else it sends is dropped
before the domain service sees it and is never stored or logged.

Every request needs a team's SCIM token (``Authorization: Bearer clutto-scim....``); the
resources of other teams do not exist for it (404). Responses are signed like the API's (P13),
requests access-logged by the port's middleware (P4), and each token is rate-limited.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Annotated, Any, cast

from aiohttp import web
from pydantic import EmailStr, ValidationError
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ComplexAttribute,
    Context,
    Error,
    ETag,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    ListResponse,
    Meta,
    Mutability,
    Patch,
    PatchOp,
    Required,
    Resource,
    ResourceType,
    Schema,
    SCIMException,
    ScimFilter,
    ScimPolicy,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.db.scim import ScimToken, ScimUser
from clutto_bridge.domain.errors import TeamError
from clutto_bridge.domain.scim import GROUPS, ProvisionedUser, ScimService, UserFields
from clutto_bridge.domain.scim_rooms import RoomGroup
from clutto_bridge.domain.service import TeamService
from clutto_bridge.web.signatures import signing_hook

log = logging.getLogger("clutto.scim")

SCIM_PREFIX = "/_clutto/scim/v2"
MEDIA_TYPE = "application/scim+json"
MAX_PAGE = 200
# Requests per second per token, with a burst: a provider's initial sync of a large directory
# runs at this pace; more gets 429 with Retry-After.
RATE = 100.0
BURST = 200

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- the schema Clutto declares: only what it keeps ------------------------------------------


class Name(ComplexAttribute):
    family_name: Annotated[str | None, Required.true] = None
    """The family name (the profile's last name, if the policy keeps it)."""
    given_name: Annotated[str | None, Required.true] = None
    """The given name (the profile's first name, if the policy keeps it)."""


class Email(ComplexAttribute):
    value: EmailStr | None = None
    """The address. One is kept, the first (the account's, when Clutto created it); its type and
    primary flag are not."""


class User(Resource[Any]):
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    """Unique in the team; its part before any @ becomes the Matrix user name."""
    name: Annotated[Name | None, Required.true] = None
    """Required: the policy's profile requires a first and last name by default (P2)."""
    title: str | None = None
    """The profile's designation, if the policy keeps it."""
    active: bool | None = None
    """False removes the person from the team at once."""
    emails: list[Email] | None = None
    """One is kept: the account's, when Clutto creates the account."""
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None
    """The role groups: admins, members or guests."""


RESOURCE_MODELS: dict[str, type[Resource[Any]]] = {"User": User, "Group": Group}


def _error(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump()
    return web.json_response(body, status=status, content_type=MEDIA_TYPE)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


class TokenBuckets:
    """One token bucket per SCIM token, in memory."""

    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        return 0.0


class ScimAPI:
    def __init__(
        self, scim: ScimService, teams: TeamService, *, keys: SigningKeys, rate: float = RATE, burst: int = BURST
    ) -> None:
        self.scim = scim
        self.teams = teams
        self.buckets = TokenBuckets(rate, burst)
        self.app = web.Application(middlewares=[self._errors, self._auth])
        self.app.on_response_prepare.append(signing_hook(MessageSigner(keys)))
        r = self.app.router
        r.add_get("/ServiceProviderConfig", self.service_provider_config)
        r.add_get("/ResourceTypes", self.resource_types)
        r.add_get("/ResourceTypes/{id}", self.resource_type)
        r.add_get("/Schemas", self.schemas)
        r.add_get("/Schemas/{id}", self.schema)
        r.add_post("/.search", self.search_all)
        r.add_post("/Users/.search", self.search_users)
        r.add_post("/Groups/.search", self.search_groups)
        r.add_get("/Users", self.list_users)
        r.add_post("/Users", self.create_user)
        r.add_get("/Users/{id}", self.get_user)
        r.add_put("/Users/{id}", self.replace_user)
        r.add_patch("/Users/{id}", self.patch_user)
        r.add_delete("/Users/{id}", self.delete_user)
        r.add_get("/Groups", self.list_groups)
        r.add_post("/Groups", self.create_group)
        r.add_get("/Groups/{id}", self.get_group)
        r.add_put("/Groups/{id}", self.replace_group)
        r.add_patch("/Groups/{id}", self.patch_group)
        r.add_delete("/Groups/{id}", self.delete_group)

    # --- middleware ---------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every refusal is a SCIM error body (scimType, status, detail); nothing is a traceback."""
        try:
            with POLICY:
                return await handler(request)
        except ScimError as e:
            return _error(e.status, e.detail, e.scim_type)
        except SCIMException as e:
            error = e.to_error()
            return _error(error.status or 400, error.detail or str(e), error.scim_type)
        except ValidationError as e:
            error = Error.from_validation_errors(e)[0]
            return _error(error.status or 400, error.detail or "Invalid request.", error.scim_type or "invalidValue")
        except TeamError as e:
            scim_type = "uniqueness" if e.status == 409 else "invalidValue" if e.status == 400 else None
            return _error(e.status, e.message, scim_type)
        except web.HTTPNotFound:
            return _error(404, f"No such endpoint: {request.method} {request.path}")
        except web.HTTPMethodNotAllowed as e:
            response = _error(405, f"{request.method} is not allowed on {request.path}")
            response.headers["Allow"] = ",".join(sorted(e.allowed_methods))
            return response
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "The request body is too large.")
        except web.HTTPException as e:
            if e.status >= 500:
                raise
            return _error(e.status, e.reason or "Refused.")
        except Exception:
            log.exception("SCIM request %s %s failed", request.method, request.path)
            return _error(500, "Internal error; see the bridge log.")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        token = await self.scim.authenticate(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
        if token is None:
            response = _error(401, "A team's SCIM token is required: Authorization: Bearer clutto-scim.…")
            response.headers["WWW-Authenticate"] = 'Bearer realm="clutto-scim"'
            return response
        wait = self.buckets.take(token.id)
        if wait:
            response = _error(429, "Too many requests for this token; slow down.")
            response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            return response
        request["scim_token"] = token
        request["team"] = await self.teams.get(token.team_id)
        return await handler(request)

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    async def _json(request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{SCIM_PREFIX}"

    def _respond(
        self,
        request: web.Request,
        body: dict[str, Any],
        status: int = 200,
        etag: str | None = None,
        location: str | None = None,
    ) -> web.Response:
        response = web.json_response(body, status=status, content_type=MEDIA_TYPE)
        if etag:
            response.headers["ETag"] = etag
        if location:
            response.headers["Location"] = location
        return response

    @staticmethod
    def _check_if_match(request: web.Request, version: str | None) -> None:
        wanted = request.headers.get("If-Match")
        if wanted and wanted.strip() != "*" and version not in [v.strip() for v in wanted.split(",")]:
            raise ScimError(412, "The resource changed since that version (If-Match).")

    async def _user_resource(self, request: web.Request, view: ProvisionedUser) -> User:
        row, f = view.row, view.fields
        name = Name(given_name=f.given_name, family_name=f.family_name) if f.given_name or f.family_name else None
        groups = []
        if view.role in GROUPS.values():
            group = next(g for g, role in GROUPS.items() if role == view.role)
            groups.append(GroupMembership(value=group, display=group, type="direct"))
        rooms = await self.scim.room_groups.of_user(row) if view.role is not None else []
        groups += [GroupMembership(value=group_id, display=room, type="direct") for group_id, room in rooms]
        user = User(
            id=row.id,
            external_id=row.external_id,
            user_name=row.user_name,
            name=name,
            title=f.title,
            active=row.active,
            emails=[Email(value=f.email)] if f.email else None,
            groups=groups or None,
        )
        user.meta = Meta(
            resource_type="User",
            created=_when(row.created_at),
            last_modified=_when(row.updated_at),
            version=_user_version(row, [g.value or "" for g in groups]),
            location=f"{self._base(request)}/Users/{row.id}",
        )
        return user

    async def _current_user(self, request: web.Request) -> ScimUser:
        """The user of the path, after its If-Match precondition (on the version with its groups)."""
        row = await self._user(request)
        if request.headers.get("If-Match"):
            current = await self._user_resource(request, await self.scim.view(row))
            self._check_if_match(request, _meta(current).version)
        return row

    @staticmethod
    def _fields(user: User) -> UserFields:
        if not user.user_name or not user.user_name.strip():
            raise ScimError(400, "userName is required.", "invalidValue")
        primary = next((e for e in user.emails or [] if e.value), None)
        return UserFields(
            user_name=user.user_name.strip(),
            external_id=user.external_id,
            given_name=user.name.given_name if user.name else None,
            family_name=user.name.family_name if user.name else None,
            title=user.title,
            email=str(primary.value) if primary else None,
            active=user.active,
        )

    def _dump(self, resource: Any, ctx: Context, params: Any = None) -> dict[str, Any]:
        return resource.model_dump(scim_ctx=ctx, response_parameters=params)

    # --- discovery ----------------------------------------------------------------------

    async def service_provider_config(self, request: web.Request) -> web.Response:
        config = ServiceProviderConfig(
            documentation_uri="https://clutto.example/docs/scim/",
            patch=Patch(supported=True),
            bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
            filter=Filter(supported=True, max_results=MAX_PAGE),
            change_password=ChangePassword(supported=False),
            sort=Sort(supported=False),
            etag=ETag(supported=True),
            authentication_schemes=[
                AuthenticationScheme(
                    type="oauthbearertoken",
                    name="Team SCIM token",
                    primary=True,
                    description="A bearer token of one team, made with `!clutto scim token new NAME`.",
                )
            ],
        )
        config.meta = Meta(
            resource_type="ServiceProviderConfig", location=f"{self._base(request)}/ServiceProviderConfig"
        )
        return self._respond(request, self._dump(config, Context.RESOURCE_QUERY_RESPONSE))

    def _resource_types(self, request: web.Request) -> list[ResourceType]:
        types = []
        for model in RESOURCE_MODELS.values():
            rt = ResourceType.from_resource(model)
            rt.meta = Meta(resource_type="ResourceType", location=f"{self._base(request)}/ResourceTypes/{rt.id}")
            types.append(rt)
        return types

    def _schemas(self, request: web.Request) -> list[Schema]:
        schemas = []
        for model in RESOURCE_MODELS.values():
            schema = model.to_schema()
            schema.meta = Meta(resource_type="Schema", location=f"{self._base(request)}/Schemas/{schema.id}")
            schemas.append(schema)
        return schemas

    def _list(
        self,
        request: web.Request,
        model: type[Resource[Any]],
        items: list[Any],
        total: int | None = None,
        start: int = 1,
        params: Any = None,
    ) -> web.Response:
        body = ListResponse[model](  # type: ignore[valid-type]  # a runtime model: the items' schema
            total_results=len(items) if total is None else total,
            start_index=start,
            items_per_page=len(items),
            resources=items,
        )
        return self._respond(request, body.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params))

    async def resource_types(self, request: web.Request) -> web.Response:
        return self._list(request, ResourceType, self._resource_types(request))

    async def resource_type(self, request: web.Request) -> web.Response:
        for rt in self._resource_types(request):
            if rt.id == request.match_info["id"]:
                return self._respond(request, self._dump(rt, Context.RESOURCE_QUERY_RESPONSE))
        raise ScimError(404, f"No resource type {request.match_info['id']!r}.")

    async def schemas(self, request: web.Request) -> web.Response:
        return self._list(request, Schema, self._schemas(request))

    async def schema(self, request: web.Request) -> web.Response:
        for schema in self._schemas(request):
            if schema.id == request.match_info["id"]:
                return self._respond(request, self._dump(schema, Context.RESOURCE_QUERY_RESPONSE))
        raise ScimError(404, f"No schema {request.match_info['id']!r}.")

    # --- users --------------------------------------------------------------------------

    def _search(
        self, request: web.Request, model: type[Resource[Any]], body: dict[str, Any] | None = None
    ) -> SearchRequest:
        q = request.query if body is None else body
        raw: dict[str, Any] = {}
        for key in ("filter", "startIndex", "count", "attributes", "excludedAttributes"):
            if key in q:
                raw[key] = q[key]
        if q.get("sortBy") or q.get("sortOrder"):
            raise ScimError(400, "Sorting is not supported (see /ServiceProviderConfig).", "invalidValue")
        try:
            search = SearchRequest[model].model_validate(raw, scim_ctx=Context.SEARCH_REQUEST)  # type: ignore[valid-type]
        except ValidationError as e:
            error = Error.from_validation_errors(e)[0]
            scim_type = "invalidFilter" if "filter" in str(e) else error.scim_type or "invalidValue"
            raise ScimError(400, error.detail or "Invalid search.", scim_type) from None
        return search

    async def _user(self, request: web.Request) -> ScimUser:
        return await self.scim.user(request["team"], request.match_info["id"])

    async def _search_body(self, request: web.Request, model: type[Resource[Any]]) -> SearchRequest:
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a SearchRequest object.", "invalidSyntax")
        return self._search(request, model, body)

    async def search_users(self, request: web.Request) -> web.Response:
        return await self.list_users(request, await self._search_body(request, User))

    async def search_groups(self, request: web.Request) -> web.Response:
        return await self.list_groups(request, await self._search_body(request, Group))

    async def search_all(self, request: web.Request) -> web.Response:
        """A search at the root spans Users and Groups: Users first, then the role groups."""
        search = await self._search_body(request, User)
        users = [
            await self._user_resource(request, await self.scim.view(row))
            for row in await self._candidates(request["team"], search.filter)
        ]
        groups = await self._all_groups(request)
        found = [r for r in [*users, *groups] if search.filter is None or search.filter.match(r)]
        return self._page(request, cast(type[Resource[Any]], User | Group), found, search)

    async def list_users(self, request: web.Request, search: SearchRequest | None = None) -> web.Response:
        team = request["team"]
        search = search or self._search(request, User)
        rows = await self._candidates(team, search.filter)
        resources = [await self._user_resource(request, await self.scim.view(row)) for row in rows]
        if search.filter is not None:
            resources = [r for r in resources if search.filter.match(r)]
        return self._page(request, User, resources, search)

    async def _candidates(self, team: Any, flt: ScimFilter | None) -> list[ScimUser]:
        """userName eq "x" (what providers ask before each create) is one indexed lookup."""
        node: Any = flt.ast if flt is not None else None  # the parser's node classes are not typed by kind
        if (
            node is not None
            and type(node).__name__ == "Comparison"
            and str(node.op).lower() == "eq"
            and node.attr_path.attr.lower() == "username"
            and not getattr(node.attr_path, "sub_attr", None)
            and isinstance(node.value, str)
        ):
            row = await self.scim.user_by_name(team, node.value)
            return [row] if row else []
        return await self.scim.users(team)

    def _page(
        self, request: web.Request, model: type[Resource[Any]], resources: list[Any], search: SearchRequest
    ) -> web.Response:
        start = max(1, search.start_index or 1)
        count = MAX_PAGE if search.count is None else min(max(0, search.count), MAX_PAGE)
        page = resources[start - 1 : start - 1 + count]
        return self._list(request, model, page, total=len(resources), start=start, params=search)

    async def get_user(self, request: web.Request) -> web.Response:
        row = await self._user(request)
        user = await self._user_resource(request, await self.scim.view(row))
        params = self._search(request, User)
        return self._respond(
            request, self._dump(user, Context.RESOURCE_QUERY_RESPONSE, params), etag=_meta(user).version
        )

    async def create_user(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a User object.", "invalidSyntax")
        user = User.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        row = await self.scim.create_user(request["team"], self._fields(user), request["scim_token"])
        created = await self._user_resource(request, await self.scim.view(row))
        return self._respond(
            request,
            self._dump(created, Context.RESOURCE_CREATION_RESPONSE),
            201,
            etag=_meta(created).version,
            location=_meta(created).location,
        )

    async def replace_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a User object.", "invalidSyntax")
        user = User.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        if user.id is not None and user.id != row.id:
            raise ScimError(400, "The id of a user cannot change.", "mutability")
        row = await self.scim.update_user(request["team"], row, self._fields(user), request["scim_token"])
        updated = await self._user_resource(request, await self.scim.view(row))
        return self._respond(
            request, self._dump(updated, Context.RESOURCE_REPLACEMENT_RESPONSE), etag=_meta(updated).version
        )

    async def patch_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a PatchOp object.", "invalidSyntax")
        patch = PatchOp[User].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        user = await self._user_resource(request, await self.scim.view(row))
        patch.patch(user)
        row = await self.scim.update_user(request["team"], row, self._fields(user), request["scim_token"])
        updated = await self._user_resource(request, await self.scim.view(row))
        return self._respond(request, self._dump(updated, Context.RESOURCE_PATCH_RESPONSE), etag=_meta(updated).version)

    async def delete_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        await self.scim.delete_user(request["team"], row, request["scim_token"])
        # No body; the content type is still named, as every signed response covers it (P13).
        return web.Response(status=204, headers={"Content-Type": MEDIA_TYPE})

    # --- groups: the team's roles, and groups that are rooms ----------------------------

    async def _group_resource(self, request: web.Request, group: str) -> Group:
        rows = await self.scim.group_members(request["team"], group)
        resource = Group(
            id=group,
            display_name=group,
            members=[GroupMember(value=row.id, display=row.user_name, type="User") for row in rows] or None,
        )
        digest = hashlib.sha256(" ".join(sorted(r.id + str(r.version) for r in rows)).encode()).hexdigest()[:16]
        return self._group_meta(request, resource, f'W/"{digest}"')

    def _room_group_resource(self, request: web.Request, group: RoomGroup) -> Group:
        resource = Group(
            id=group.row.id,
            display_name=group.name,
            members=[GroupMember(value=u.id, display=u.user_name, type="User") for u in group.users] or None,
        )
        return self._group_meta(request, resource, f'W/"{group.row.version}"')

    def _group_meta(self, request: web.Request, resource: Group, version: str) -> Group:
        location = f"{self._base(request)}/Groups/{resource.id}"
        resource.meta = Meta(resource_type="Group", version=version, location=location)
        return resource

    async def _all_groups(self, request: web.Request) -> list[Group]:
        roles = [await self._group_resource(request, g) for g in GROUPS]
        rooms = await self.scim.room_groups.all(request["team"])
        return roles + [self._room_group_resource(request, g) for g in rooms]

    async def _group(self, request: web.Request) -> tuple[Group, RoomGroup | None]:
        """The group of the path: a role group, or a room group (with its row)."""
        group_id = request.match_info["id"]
        if group_id in GROUPS:
            return await self._group_resource(request, group_id), None
        room = await self.scim.room_groups.get(request["team"], group_id)
        if room is None:
            raise ScimError(404, f"No group {group_id!r} in this team.")
        return self._room_group_resource(request, room), room

    async def list_groups(self, request: web.Request, search: SearchRequest | None = None) -> web.Response:
        search = search or self._search(request, Group)
        groups = await self._all_groups(request)
        if search.filter is not None:
            groups = [g for g in groups if search.filter.match(g)]
        return self._page(request, Group, groups, search)

    async def get_group(self, request: web.Request) -> web.Response:
        group, _ = await self._group(request)
        return self._respond(
            request,
            self._dump(group, Context.RESOURCE_QUERY_RESPONSE, self._search(request, Group)),
            etag=_meta(group).version,
        )

    async def create_group(self, request: web.Request) -> web.Response:
        """A new group is a new room of the team's space (or the room of a name in scim.room_groups)."""
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a Group object.", "invalidSyntax")
        group = Group.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        if not group.display_name or not group.display_name.strip():
            raise ScimError(400, "displayName is required: it is the room's name.", "invalidValue")
        token = request["scim_token"]
        created = await self.scim.room_groups.create(
            request["team"], group.display_name, _member_ids(group), actor=self.scim.actor(token)
        )
        resource = self._room_group_resource(request, created)
        return self._respond(
            request,
            self._dump(resource, Context.RESOURCE_CREATION_RESPONSE),
            201,
            etag=_meta(resource).version,
            location=_meta(resource).location,
        )

    async def delete_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        if room is None:
            raise ScimError(403, "The groups admins, members and guests are the team's roles and cannot be deleted.")
        self._check_if_match(request, _meta(current).version)
        await self.scim.room_groups.delete(request["team"], room.row, actor=self.scim.actor(request["scim_token"]))
        return web.Response(status=204, headers={"Content-Type": MEDIA_TYPE})

    async def replace_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        self._check_if_match(request, _meta(current).version)
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a Group object.", "invalidSyntax")
        group = Group.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        if group.display_name and group.display_name != current.display_name:
            raise ScimError(400, "A group's displayName cannot change (it is a role or a room).", "mutability")
        return await self._set_members(request, current, room, group)

    async def patch_group(self, request: web.Request) -> web.Response:
        current, room = await self._group(request)
        self._check_if_match(request, _meta(current).version)
        name = current.display_name
        body = await self._json(request)
        if not isinstance(body, dict):
            raise ScimError(400, "The body must be a PatchOp object.", "invalidSyntax")
        patch = PatchOp[Group].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        patch.patch(current)
        if current.display_name != name:
            raise ScimError(400, "A group's displayName cannot change (it is a role or a room).", "mutability")
        return await self._set_members(request, current, room, current)

    async def _set_members(
        self, request: web.Request, current: Group, room: RoomGroup | None, group: Group
    ) -> web.Response:
        team, token = request["team"], request["scim_token"]
        if room is None:
            assert current.id is not None, "every group this module builds has its id"
            await self.scim.set_group(team, current.id, _member_ids(group), token)
            updated = await self._group_resource(request, current.id)
        else:
            await self.scim.room_groups.set_members(team, room.row, _member_ids(group), actor=self.scim.actor(token))
            fresh = await self.scim.room_groups.get(team, room.row.id)
            assert fresh is not None, "not deleted by a change of members"
            updated = self._room_group_resource(request, fresh)
        return self._respond(
            request, self._dump(updated, Context.RESOURCE_REPLACEMENT_RESPONSE), etag=_meta(updated).version
        )


def _member_ids(group: Group) -> set[str]:
    return {m.value for m in group.members or [] if m.value}


def _meta(resource: Resource[Any]) -> Meta:
    """The meta of a resource this module built (every one gets its meta when made)."""
    assert resource.meta is not None, "set by _user_resource and _group_resource"
    return resource.meta


def _when(ms: int) -> Any:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _user_version(row: ScimUser, groups: list[str]) -> str:
    """The stored version, and the groups (role and rooms): a new role is a new version too."""
    digest = hashlib.sha256(" ".join(sorted(groups)).encode()).hexdigest()[:8]
    return f'W/"{row.version}-{digest}"'


__all__ = ["SCIM_PREFIX", "ScimAPI", "ScimToken"]
