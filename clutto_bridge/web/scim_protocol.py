"""The SCIM 2.0 wire format shared by the Users and Groups endpoints (``web/scim.py``,
``web/scim_groups.py``): error bodies, JSON bodies, searches, pages and preconditions.

The tolerant ``POLICY`` accepts what Entra ID and Okta really send (unknown attributes dropped,
capitalised ops, string booleans, PATCH without a path); ``ScimAPI``'s middleware applies it and
turns a ``ScimError`` into a SCIM error body.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError
from scim2_models import Context, Error, ListResponse, Meta, Resource, ScimPolicy, SearchRequest

from clutto_bridge.db.scim import ScimToken
from clutto_bridge.db.team import Team
from clutto_bridge.json_bodies import RefusedJson, parse_json

SCIM_PREFIX = "/_clutto/scim/v2"
MEDIA_TYPE = "application/scim+json"
MAX_PAGE = 200

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

# What the SCIM token middleware found: the request's token and the one team it belongs to.
SCIM_TOKEN = web.RequestKey("scim_token", ScimToken)
SCIM_TEAM = web.RequestKey("team", Team)


def error_response(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump()
    return web.json_response(body, status=status, content_type=MEDIA_TYPE)


class ScimError(Exception):
    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


async def read_json(request: web.Request) -> Any:
    """The body as JSON, parsed as every other body on the port is (``json_bodies``: bounded
    depth, so a deeply nested body is a 400, not a RecursionError); a SCIM 400 otherwise."""
    try:
        return parse_json(await request.read())
    except RefusedJson as e:
        detail = "The body is not JSON." if e.errcode == "M_NOT_JSON" else e.message
        raise ScimError(400, detail, "invalidSyntax") from None


async def read_object(request: web.Request, what: str) -> dict[str, Any]:
    """The body, which must be a JSON object (``what`` names the SCIM message it must be)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ScimError(400, f"The body must be {what} object.", "invalidSyntax")
    return body


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}{SCIM_PREFIX}"


def respond(
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


def respond_created(resource: Resource[Any]) -> web.Response:
    """201 with the new resource, its version as the ETag and its address as the Location."""
    return respond(
        dump(resource, Context.RESOURCE_CREATION_RESPONSE),
        201,
        etag=meta(resource).version,
        location=meta(resource).location,
    )


def check_if_match(request: web.Request, version: str | None) -> None:
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() != "*" and version not in [v.strip() for v in wanted.split(",")]:
        raise ScimError(412, "The resource changed since that version (If-Match).")


def dump(resource: Any, ctx: Context, params: Any = None) -> dict[str, Any]:
    return resource.model_dump(scim_ctx=ctx, response_parameters=params)


def meta(resource: Resource[Any]) -> Meta:
    """The meta of a resource the SCIM endpoints built (every one gets its meta when made)."""
    assert resource.meta is not None, "set by the Users and Groups endpoints when they build a resource"
    return resource.meta


def search_request(
    request: web.Request, model: type[Resource[Any]], body: dict[str, Any] | None = None
) -> SearchRequest:
    """The search of the query string, or of a ``.search`` body."""
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


async def search_body(request: web.Request, model: type[Resource[Any]]) -> SearchRequest:
    return search_request(request, model, await read_object(request, "a SearchRequest"))


def list_response(
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
    return respond(body.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=params))


def page(model: type[Resource[Any]], resources: list[Any], search: SearchRequest) -> web.Response:
    start = max(1, search.start_index or 1)
    count = MAX_PAGE if search.count is None else min(max(0, search.count), MAX_PAGE)
    return list_response(
        model, resources[start - 1 : start - 1 + count], total=len(resources), start=start, params=search
    )
