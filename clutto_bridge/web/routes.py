"""Route declarations: one table feeds both the aiohttp router and the OpenAPI document.

Each handler is declared with its method, path, summary, request body (a model from
``inputs``), query model, responses by status (models from ``outputs``) and the refusals
worth documenting. The table parses and validates the body and the query before the
handler runs, so a handler starts from typed input, and nothing is routed that the
document does not describe, or described that is not routed.

A handler returns the model it declares (or a ``Reply`` of it, to choose among declared
statuses or add headers), never a response it built: the table serializes it, and refuses
(a 500, logged) a model or status the route does not declare. So the document, made from the
same declarations, cannot drift from what is sent.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.inputs import parse_body, parse_query


@dataclass(frozen=True)
class Reply:
    """A declared response model with the status to send it with (of those the route declares)
    or headers; a handler that has one status and no headers returns the model itself."""

    body: BaseModel
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


# What a handler returns: its declared model, a Reply of it, or a file (``files=``) it serves.
Answer = BaseModel | Reply | web.StreamResponse
Handler = Callable[..., Awaitable[Answer]]


class UndeclaredResponse(TypeError):
    """A handler answered with a model or status its route does not declare: a bug, never sent."""


_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class RawBody:
    """A body the handler reads itself (a file), documented with its media types."""

    model: type[BaseModel]
    media_types: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as aiohttp routes it, e.g. ``/exports/{job_id}/{path:.+}``
    summary: str
    handler: Handler
    body: type[BaseModel] | RawBody | None = None
    query: type[BaseModel] | None = None
    responses: Mapping[int, type[BaseModel]] = field(default_factory=dict)
    errors: Mapping[int, str] = field(default_factory=dict)
    file_responses: frozenset[int] = frozenset()  # statuses whose body is a file, not JSON
    description: str | None = None
    public: bool = False  # served without a bearer token (public key material only)

    @property
    def template(self) -> str:
        """The path as OpenAPI writes it: ``{path:.+}`` becomes ``{path}``."""
        return _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", self.path)

    @property
    def path_parameters(self) -> list[str]:
        return _PARAMETER.findall(self.path)

    def bind(self, owner: object) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler: parse the declared input, then call the method on ``owner``."""
        method = self.handler.__get__(owner)
        body, query = self.body, self.query

        async def handle(request: web.Request) -> web.StreamResponse:
            if any("\x00" in value for value in request.match_info.values()):
                # No team, member, job or file is named with a NUL (and PostgreSQL and the
                # file system refuse one): whatever the path names does not exist.
                raise ApiError(404, "M_NOT_FOUND", "Nothing here has a NUL character in its name.")
            kwargs: dict[str, Any] = {}
            if isinstance(body, type):
                kwargs["body"] = await parse_body(request, body)
            if query is not None:
                kwargs["query"] = parse_query(request, query)
            return self.respond(await method(request, **kwargs))

        handle.__name__ = self.handler.__name__
        handle.public = self.public  # type: ignore[attr-defined]  # read by the auth middleware
        return handle

    def respond(self, answer: Answer) -> web.StreamResponse:
        """The response for what the handler returned, serialized by the model the route declares
        for its status; anything else is refused rather than sent undocumented."""
        if isinstance(answer, web.StreamResponse):
            if not self.file_responses:
                raise UndeclaredResponse(f"{self.method} {self.path} declares no file response")
            return answer
        reply = answer if isinstance(answer, Reply) else Reply(answer)
        status = reply.status
        if status is None:
            json_statuses = [s for s in self.responses if s not in self.file_responses]
            status = json_statuses[0] if len(json_statuses) == 1 else None
        declared = self.responses.get(status) if status is not None else None
        if status is None or status in self.file_responses or type(reply.body) is not declared:
            shown = {s: m.__name__ for s, m in self.responses.items()}
            raise UndeclaredResponse(
                f"{self.method} {self.path} answered {type(reply.body).__name__} with status {status}; "
                f"it declares {shown}"
            )
        return web.json_response(text=reply.body.model_dump_json(), status=status, headers=dict(reply.headers) or None)


class RouteTable:
    """The endpoints of one handler class, declared by decorator beside each handler."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: type[BaseModel] | RawBody | None = None,
        query: type[BaseModel] | None = None,
        responses: Mapping[int, type[BaseModel]],
        errors: Mapping[int, str] | None = None,
        files: frozenset[int] = frozenset(),
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method,
                    path,
                    summary,
                    handler,
                    body,
                    query,
                    responses,
                    errors or {},
                    files,
                    (handler.__doc__ or "").strip() or None,
                    public,
                )
            )
            return handler

        return declare

    def get(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **kw)

    def post(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **kw)

    def put(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **kw)

    def patch(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **kw)

    def delete(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **kw)

    def register(self, router: web.UrlDispatcher, owner: object) -> None:
        for route in self.routes:
            router.add_route(route.method, route.path, route.bind(owner))
