"""The OpenAPI document of the provisioning API, generated from the route table and the models.

Nothing here describes an endpoint or a schema by hand: paths, methods, parameters,
bodies and responses come from the ``Route`` declarations, schemas from pydantic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from clutto_bridge import __version__
from clutto_bridge.web.outputs import MatrixError
from clutto_bridge.web.routes import RawBody, Route

REF = "#/components/schemas/{model}"
OPENAPI_VERSION = "3.1.0"

DESCRIPTION = (
    "Operators authenticate with the provisioning secret as a bearer token. "
    "Members and Customers use a Matrix OpenID token from their homeserver "
    "(POST /_matrix/client/v3/user/{userId}/openid/request_token) as the bearer token and may act "
    "only on their own teams, with the rights of their role. "
    "Errors are Matrix-style objects with errcode and error. "
    "Every response carries our RFC 9421 signature (Signature-Input, Signature) over @status, "
    "content-type and content-digest (RFC 9530), made with the Ed25519 key published at GET /keys."
)

# Path parameters that are not plain text; the rest are strings.
_PATH_TYPES: dict[str, type] = {"job_id": int}
_PATH_NOTES = {
    "path": "a path listed in the export's manifest.json; may contain /",
    "room": "a group room's ID or name",
}


def openapi_document(prefix: str, routes: Iterable[Route]) -> dict[str, Any]:
    routes = list(routes)
    schemas = _component_schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "clutto-bridge provisioning API", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": prefix}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
    }


def _models(routes: list[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(MatrixError, "serialization"): None}
    for route in routes:
        body = route.body.model if isinstance(route.body, RawBody) else route.body
        if body is not None:
            seen[(body, "validation")] = None
        for status, model in route.responses.items():
            if status not in route.file_responses:
                seen[(model, "serialization")] = None
    return list(seen)


def _component_schemas(routes: list[Route]) -> dict[str, Any]:
    _, top = models_json_schema(_models(routes), ref_template=REF)
    return top.get("$defs", {})


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "operationId": route.handler.__name__}
    if route.description:
        op["description"] = route.description
    parameters = [_path_parameter(name) for name in route.path_parameters]
    if route.query is not None:
        parameters += _query_parameters(route.query)
    if parameters:
        op["parameters"] = parameters
    if isinstance(route.body, RawBody):
        schema = _ref(route.body.model)
        op["requestBody"] = {"required": True, "content": {kind: {"schema": schema} for kind in route.body.media_types}}
    elif route.body is not None:
        op["requestBody"] = {"required": True, "content": _json(_ref(route.body))}
    responses: dict[str, Any] = {}
    for status, model in route.responses.items():
        if status in route.file_responses:
            file = TypeAdapter(bytes).json_schema()
            responses[str(status)] = {
                "description": (model.__doc__ or "").strip(),
                "content": {"application/octet-stream": {"schema": file}},
            }
        else:
            responses[str(status)] = {"description": _first_line(model), "content": _json(_ref(model))}
    error = _json(_ref(MatrixError))
    refusals = {**({} if route.public else {401: "Missing or unknown bearer token"}), **route.errors}
    if route.public:
        op["security"] = []
    if route.body is not None or route.query is not None:
        refusals.setdefault(400, "A body or query that does not fit, or a value the bridge refuses")
    for status, why in sorted(refusals.items()):
        responses[str(status)] = {"description": why, "content": error}
    responses["default"] = {"description": "Any other refusal, Matrix-style", "content": error}
    op["responses"] = responses
    return op


def _first_line(model: type[BaseModel]) -> str:
    doc = (model.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else model.__name__


def _path_parameter(name: str) -> dict[str, Any]:
    parameter = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": TypeAdapter(_PATH_TYPES.get(name, str)).json_schema(),
    }
    if name in _PATH_NOTES:
        parameter["description"] = _PATH_NOTES[name]
    return parameter


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    properties = model.model_json_schema(ref_template=REF)["properties"]
    parameters = []
    for name, info in model.model_fields.items():
        schema = dict(properties[name])
        parameter = {"name": name, "in": "query", "required": info.is_required()}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        schema.pop("title", None)
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters
