"""Reading request bodies: JSON objects and typed fields, with Matrix-style 400s."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from clutto_bridge.web.errors import ApiError


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "M_NOT_JSON", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "M_BAD_JSON", "The request body must be a JSON object.")
    return body


_MISSING = object()


def field(body: dict[str, Any], key: str, kind: type, default: Any = _MISSING) -> Any:
    if key not in body:
        if default is _MISSING:
            raise ApiError(400, "M_MISSING_PARAM", f"Missing field {key!r}.")
        return default
    if not isinstance(body[key], kind):
        raise ApiError(400, "M_INVALID_PARAM", f"Field {key!r} must be a {kind.__name__}.")
    return body[key]
