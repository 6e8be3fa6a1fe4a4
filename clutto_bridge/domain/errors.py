"""Refusals of the team domain. Bot commands show the message; the API maps them to 4xx."""

from __future__ import annotations


class TeamError(Exception):
    status = 400
    errcode = "M_INVALID_PARAM"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TeamError):
    pass


class UnknownUser(TeamError):
    status = 404
    errcode = "M_NOT_FOUND"


class NotFound(TeamError):
    status = 404
    errcode = "M_NOT_FOUND"


class Conflict(TeamError):
    status = 409
    errcode = "IO.CLUTTO.CONFLICT"


class TeamExists(Conflict):
    errcode = "IO.CLUTTO.TEAM_EXISTS"


class NotAllowed(TeamError):
    status = 403
    errcode = "M_FORBIDDEN"
