"""SCIM 2.0 (RFC 7643/7644) under ``/_clutto/scim/v2``: a team's identity provider manages its
members (Users) and roles and room groups (Groups, ``web/scim_groups.py``).

Resources, filters, PATCH and error bodies are scim2-models'; the tolerant ``POLICY``
(``web/scim_protocol.py``) accepts what Entra ID and Okta really send (unknown attributes dropped,
capitalised ops, string booleans, PATCH without a path). The declared schema holds only what
Clutto keeps (P2/P3), so a provider sees which attributes are supported; everything else it
sends is dropped before the domain service sees it and is never stored or logged.

Every request needs a team's SCIM token (``Authorization: Bearer clutto-scim....``); the
resources of other teams do not exist for it (404). Responses are signed like the API's (P13),
requests access-logged by the port's middleware (P4), and each token is rate-limited.
"""

from __future__ import annotations

import hashlib
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
    GroupMembership,
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
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

from clutto_bridge.crypto.http_signatures import MessageSigner, SigningKeys
from clutto_bridge.db.scim import ScimToken, ScimUser
from clutto_bridge.domain.errors import TeamError
from clutto_bridge.domain.scim import GROUPS, ProvisionedUser, ScimService, UserFields
from clutto_bridge.domain.service import TeamService
from clutto_bridge.web.scim_groups import ScimGroups
from clutto_bridge.web.scim_protocol import (
    MAX_PAGE,
    MEDIA_TYPE,
    POLICY,
    SCIM_PREFIX,
    SCIM_TEAM,
    SCIM_TOKEN,
    ScimError,
    base_url,
    check_if_match,
    dump,
    error_response,
    list_response,
    meta,
    page,
    read_object,
    respond,
    respond_created,
    search_body,
    search_request,
)
from clutto_bridge.web.signatures import signing_hook

log = logging.getLogger("clutto.scim")

# Requests per second per token, with a burst: a provider's initial sync of a large directory
# runs at this pace; more gets 429 with Retry-After.
RATE = 100.0
BURST = 200

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
        self.groups = ScimGroups(scim)
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
        r.add_post("/Groups/.search", self.groups.search_groups)
        r.add_get("/Users", self.list_users)
        r.add_post("/Users", self.create_user)
        r.add_get("/Users/{id}", self.get_user)
        r.add_put("/Users/{id}", self.replace_user)
        r.add_patch("/Users/{id}", self.patch_user)
        r.add_delete("/Users/{id}", self.delete_user)
        r.add_get("/Groups", self.groups.list_groups)
        r.add_post("/Groups", self.groups.create_group)
        r.add_get("/Groups/{id}", self.groups.get_group)
        r.add_put("/Groups/{id}", self.groups.replace_group)
        r.add_patch("/Groups/{id}", self.groups.patch_group)
        r.add_delete("/Groups/{id}", self.groups.delete_group)

    # --- middleware ---------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every refusal is a SCIM error body (scimType, status, detail); nothing is a traceback."""
        try:
            with POLICY:
                return await handler(request)
        except ScimError as e:
            return error_response(e.status, e.detail, e.scim_type)
        except SCIMException as e:
            error = e.to_error()
            return error_response(error.status or 400, error.detail or str(e), error.scim_type)
        except ValidationError as e:
            error = Error.from_validation_errors(e)[0]
            return error_response(
                error.status or 400, error.detail or "Invalid request.", error.scim_type or "invalidValue"
            )
        except TeamError as e:
            scim_type = "uniqueness" if e.status == 409 else "invalidValue" if e.status == 400 else None
            return error_response(e.status, e.message, scim_type)
        except web.HTTPNotFound:
            return error_response(404, f"No such endpoint: {request.method} {request.path}")
        except web.HTTPMethodNotAllowed as e:
            response = error_response(405, f"{request.method} is not allowed on {request.path}")
            response.headers["Allow"] = ",".join(sorted(e.allowed_methods))
            return response
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, "The request body is too large.")
        except web.HTTPException as e:
            if e.status >= 500:
                raise
            return error_response(e.status, e.reason or "Refused.")
        except Exception:
            log.exception("SCIM request %s %s failed", request.method, request.path)
            return error_response(500, "Internal error; see the bridge log.")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        token = await self.scim.authenticate(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
        if token is None:
            response = error_response(401, "A team's SCIM token is required: Authorization: Bearer clutto-scim.…")
            response.headers["WWW-Authenticate"] = 'Bearer realm="clutto-scim"'
            return response
        wait = self.buckets.take(token.id)
        if wait:
            response = error_response(429, "Too many requests for this token; slow down.")
            response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
            return response
        request[SCIM_TOKEN] = token
        request[SCIM_TEAM] = await self.teams.get(token.team_id)
        return await handler(request)

    # --- helpers ------------------------------------------------------------------------

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
            location=f"{base_url(request)}/Users/{row.id}",
        )
        return user

    async def _current_user(self, request: web.Request) -> ScimUser:
        """The user of the path, after its If-Match precondition (on the version with its groups)."""
        row = await self._user(request)
        if request.headers.get("If-Match"):
            current = await self._user_resource(request, await self.scim.view(row))
            check_if_match(request, meta(current).version)
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
        config.meta = Meta(resource_type="ServiceProviderConfig", location=f"{base_url(request)}/ServiceProviderConfig")
        return respond(dump(config, Context.RESOURCE_QUERY_RESPONSE))

    def _resource_types(self, request: web.Request) -> list[ResourceType]:
        types = []
        for model in RESOURCE_MODELS.values():
            rt = ResourceType.from_resource(model)
            rt.meta = Meta(resource_type="ResourceType", location=f"{base_url(request)}/ResourceTypes/{rt.id}")
            types.append(rt)
        return types

    def _schemas(self, request: web.Request) -> list[Schema]:
        schemas = []
        for model in RESOURCE_MODELS.values():
            schema = model.to_schema()
            schema.meta = Meta(resource_type="Schema", location=f"{base_url(request)}/Schemas/{schema.id}")
            schemas.append(schema)
        return schemas

    async def resource_types(self, request: web.Request) -> web.Response:
        return list_response(ResourceType, self._resource_types(request))

    async def resource_type(self, request: web.Request) -> web.Response:
        for rt in self._resource_types(request):
            if rt.id == request.match_info["id"]:
                return respond(dump(rt, Context.RESOURCE_QUERY_RESPONSE))
        raise ScimError(404, f"No resource type {request.match_info['id']!r}.")

    async def schemas(self, request: web.Request) -> web.Response:
        return list_response(Schema, self._schemas(request))

    async def schema(self, request: web.Request) -> web.Response:
        for schema in self._schemas(request):
            if schema.id == request.match_info["id"]:
                return respond(dump(schema, Context.RESOURCE_QUERY_RESPONSE))
        raise ScimError(404, f"No schema {request.match_info['id']!r}.")

    # --- users --------------------------------------------------------------------------

    async def _user(self, request: web.Request) -> ScimUser:
        return await self.scim.user(request[SCIM_TEAM], request.match_info["id"])

    async def search_users(self, request: web.Request) -> web.Response:
        return await self.list_users(request, await search_body(request, User))

    async def search_all(self, request: web.Request) -> web.Response:
        """A search at the root spans Users and Groups: Users first, then the role groups."""
        search = await search_body(request, User)
        users = [
            await self._user_resource(request, await self.scim.view(row))
            for row in await self._candidates(request[SCIM_TEAM], search.filter)
        ]
        groups = await self.groups.all_groups(request)
        found = [r for r in [*users, *groups] if search.filter is None or search.filter.match(r)]
        return page(cast(type[Resource[Any]], User | Group), found, search)

    async def list_users(self, request: web.Request, search: SearchRequest | None = None) -> web.Response:
        team = request[SCIM_TEAM]
        search = search or search_request(request, User)
        rows = await self._candidates(team, search.filter)
        resources = [await self._user_resource(request, await self.scim.view(row)) for row in rows]
        if search.filter is not None:
            resources = [r for r in resources if search.filter.match(r)]
        return page(User, resources, search)

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

    async def get_user(self, request: web.Request) -> web.Response:
        row = await self._user(request)
        user = await self._user_resource(request, await self.scim.view(row))
        params = search_request(request, User)
        return respond(dump(user, Context.RESOURCE_QUERY_RESPONSE, params), etag=meta(user).version)

    async def create_user(self, request: web.Request) -> web.Response:
        body = await read_object(request, "a User")
        user = User.model_validate(body, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        row = await self.scim.create_user(request[SCIM_TEAM], self._fields(user), request[SCIM_TOKEN])
        created = await self._user_resource(request, await self.scim.view(row))
        return respond_created(created)

    async def replace_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        body = await read_object(request, "a User")
        user = User.model_validate(body, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        if user.id is not None and user.id != row.id:
            raise ScimError(400, "The id of a user cannot change.", "mutability")
        row = await self.scim.update_user(request[SCIM_TEAM], row, self._fields(user), request[SCIM_TOKEN])
        updated = await self._user_resource(request, await self.scim.view(row))
        return respond(dump(updated, Context.RESOURCE_REPLACEMENT_RESPONSE), etag=meta(updated).version)

    async def patch_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        body = await read_object(request, "a PatchOp")
        patch = PatchOp[User].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        user = await self._user_resource(request, await self.scim.view(row))
        patch.patch(user)
        row = await self.scim.update_user(request[SCIM_TEAM], row, self._fields(user), request[SCIM_TOKEN])
        updated = await self._user_resource(request, await self.scim.view(row))
        return respond(dump(updated, Context.RESOURCE_PATCH_RESPONSE), etag=meta(updated).version)

    async def delete_user(self, request: web.Request) -> web.Response:
        row = await self._current_user(request)
        await self.scim.delete_user(request[SCIM_TEAM], row, request[SCIM_TOKEN])
        # No body; the content type is still named, as every signed response covers it (P13).
        return web.Response(status=204, headers={"Content-Type": MEDIA_TYPE})


def _when(ms: int) -> Any:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _user_version(row: ScimUser, groups: list[str]) -> str:
    """The stored version, and the groups (role and rooms): a new role is a new version too."""
    digest = hashlib.sha256(" ".join(sorted(groups)).encode()).hexdigest()[:8]
    return f'W/"{row.version}-{digest}"'


__all__ = ["SCIM_PREFIX", "ScimAPI", "ScimToken"]
