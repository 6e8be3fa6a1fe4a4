"""A handler answers with the model its route declares, or nothing is sent (issue 26).

The OpenAPI document is made from the route declarations; these tests keep the handlers to
them: statically (each handler's return type is its declared model) and when it answers
(anything else, a dict of a different shape included, is refused as a 500).
"""

from __future__ import annotations

import json
import typing

import jsonschema
import pytest
from aiohttp import web
from pydantic import ValidationError

from clutto_bridge.web import outputs as o
from clutto_bridge.web.openapi import openapi_document
from clutto_bridge.web.provisioning import PREFIX, all_routes
from clutto_bridge.web.routes import Reply, Route, UndeclaredResponse


def _route(responses: dict[int, type], files: frozenset[int] = frozenset()) -> Route:
    async def handler(self: object, request: web.Request) -> object: ...

    return Route("GET", "/things", "Things", handler, responses=responses, file_responses=files)


@pytest.mark.parametrize("route", all_routes(), ids=lambda r: f"{r.method} {r.path}")
def test_each_handler_is_typed_to_return_what_its_route_declares(route: Route) -> None:
    """mypy holds each handler to its return type; this holds the return type to the route."""
    returns = typing.get_type_hints(route.handler)["return"]
    json_statuses = [s for s in route.responses if s not in route.file_responses]
    if route.file_responses:
        assert returns is web.StreamResponse
    elif len(json_statuses) == 1 and returns is not Reply:
        assert returns is route.responses[json_statuses[0]]
    else:
        assert returns is Reply, "a route with several statuses answers with a Reply naming one"


def test_a_dict_of_another_shape_is_refused_not_sent() -> None:
    route = _route({200: o.Deleted})
    for answer in ({"deleted": "t1"}, {"gone": "t1"}, web.json_response({"gone": "t1"})):
        with pytest.raises(UndeclaredResponse):
            route.respond(answer)  # type: ignore[arg-type]


def test_another_model_or_an_undeclared_status_is_refused() -> None:
    route = _route({201: o.Room, 200: o.Room})
    room = o.Room(room_id="!r:x", name="general", kind="group", archived=False)
    with pytest.raises(UndeclaredResponse, match="Deleted with status 200"):
        _route({200: o.Room}).respond(o.Deleted(deleted="t1"))
    with pytest.raises(UndeclaredResponse, match="status None"):
        route.respond(room)  # two statuses declared: the handler names one
    with pytest.raises(UndeclaredResponse, match="status 202"):
        route.respond(Reply(room, status=202))
    assert route.respond(Reply(room, status=201)).status == 201


def test_a_model_cannot_be_built_with_a_field_it_does_not_declare() -> None:
    with pytest.raises(ValidationError):
        o.Deleted.model_validate({"deleted": "t1", "purged": True})
    with pytest.raises(ValidationError):
        o.Room(room_id="!r:x", name="general", kind="space", archived=False)


def test_what_is_sent_fits_the_documented_schema() -> None:
    route = _route({200: o.Holds})
    response = route.respond(o.Holds(holds=["", "!r:x"]))
    assert isinstance(response, web.Response) and response.status == 200
    assert response.content_type == "application/json"
    doc = openapi_document(PREFIX, all_routes())
    schema = {**doc["components"]["schemas"]["Holds"], "components": doc["components"]}
    jsonschema.validate(json.loads(typing.cast(bytes, response.body)), schema)


def test_a_file_is_sent_only_where_the_route_declares_one() -> None:
    file = web.StreamResponse()
    assert _route({200: o.ExportFile}, files=frozenset({200})).respond(file) is file
    with pytest.raises(UndeclaredResponse):
        _route({200: o.Holds}).respond(file)
