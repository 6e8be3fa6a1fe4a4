"""JSON request bodies with bounded nesting, for every endpoint on the bridge's port.

Python's JSON parser recurses once per level of nesting, and so do pydantic and any walk
over the result: a body nested a thousand levels deep raises ``RecursionError`` somewhere,
which used to become a 500. No request the bridge serves nests anywhere near
``MAX_DEPTH``, so a deeper body is refused as bad JSON before anything walks it.

Pure (bytes in, value or refusal out) and on the lowest layer, so the web endpoints
(``web/bodies.py``) and the appservice's transactions (``matrix/appservice.py``) share it.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class RefusedJson(ValueError):
    """A body that is not JSON (``M_NOT_JSON``) or not acceptable JSON (``M_BAD_JSON``)."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message


def parse_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The body as a JSON value, or RefusedJson saying in one sentence what is wrong."""
    too_deep = RefusedJson("M_BAD_JSON", f"The body nests deeper than {max_depth} levels.")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RefusedJson("M_NOT_JSON", "The body is not UTF-8.") from None
    except RecursionError:
        raise too_deep from None
    except ValueError:
        raise RefusedJson("M_NOT_JSON", "The body is not valid JSON.") from None
    if depth(value, max_depth) > max_depth:
        raise too_deep
    return value


def depth(value: Any, limit: int) -> int:
    """How deeply lists and objects nest, counted up to just past ``limit`` (iteratively:
    the walk itself must not run out of stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
