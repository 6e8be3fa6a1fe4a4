"""Checks of user input that names teams, users and roles (pure, no I/O)."""

from __future__ import annotations

import unicodedata

from clutto_bridge.config import ROLES
from clutto_bridge.policy.ids import USER_ID
from clutto_bridge.teams.errors import InvalidInput



def team_name(raw: object, max_length: int) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("The team name must be text.")
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("The team name must not be empty.")
    if len(name) > max_length:
        raise InvalidInput(f"The team name is {len(name)} characters long; at most {max_length} are allowed.")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInput("The team name must not contain control or invisible characters.")
    return name


def room_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("The room name must be text.")
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 80:
        raise InvalidInput("A room name has 1 to 80 characters.")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidInput("The room name must not contain control or invisible characters.")
    return name


def user_id(raw: object) -> str:
    if not isinstance(raw, str) or not USER_ID.fullmatch(raw.strip()):
        raise InvalidInput(f"{raw!r} is not a Matrix user ID; write it like @alice:example.com.")
    return raw.strip()


def role(raw: object, *, allow_owner: bool = False) -> str:
    if not isinstance(raw, str) or raw.strip().lower() not in ROLES:
        raise InvalidInput(f"Unknown role {raw!r}; roles are {', '.join(ROLES)}.")
    value = raw.strip().lower()
    if value == "owner" and not allow_owner:
        raise InvalidInput("A team has exactly one owner; ownership moves with a transfer, not an invite.")
    return value
