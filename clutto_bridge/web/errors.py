"""Matrix-style error bodies: ``{"errcode": ..., "error": ...}`` with a 4xx status."""

from __future__ import annotations

import json

from aiohttp import web


def error_response(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


class ApiError(web.HTTPException):
    """Raised by handlers; rendered by aiohttp as the Matrix-style body."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"errcode": errcode, "error": message}), content_type="application/json")
