"""Checks each provisioning API response against the OpenAPI document the bridge serves.

Every test that talks to the API through ``Api`` runs this, so the document cannot
drift from what the handlers really return: an undocumented status, a missing or extra
field, or a wrong type fails the test that saw it.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator

ERROR = {"$ref": "#/components/schemas/MatrixError"}


class ResponseChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.templates = [
            (re.compile(re.sub(r"\\\{(\w+)\\\}", lambda m: ".+" if m.group(1) == "path" else "[^/]+", re.escape(t))), t)
            for t in document["paths"]
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The documented operation that serves ``method path`` (path below the prefix, query included)."""
        bare = path.split("?", 1)[0]
        for pattern, template in self.templates:
            if pattern.fullmatch(bare):
                op = self.document["paths"][template].get(method.lower())
                return (template, op) if op else None
        return None

    def check(self, method: str, path: str, status: int, body: Any) -> None:
        found = self.operation(method, path)
        if found is None:
            assert status >= 400, f"{method} {path} answered {status} but is not documented"
            self._validate(body, ERROR, f"{method} {path} {status}")
            return
        template, op = found
        response = op["responses"].get(str(status))
        if response is None and status >= 400:
            response = op["responses"]["default"]
        assert response is not None, f"{method} {template} answered {status}, which its documentation does not list"
        content = response.get("content", {})
        if "application/json" in content:
            self._validate(body, content["application/json"]["schema"], f"{method} {template} {status}")

    def _validate(self, body: Any, schema: dict[str, Any], what: str) -> None:
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{what}: the body does not fit the documented schema: " + "; ".join(
            f"{'/'.join(map(str, e.path)) or 'body'}: {e.message}" for e in errors
        )
