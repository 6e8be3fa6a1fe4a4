"""Checks of user input that names teams, users and roles (pure, no I/O)."""

from __future__ import annotations

from clutto_bridge.config import ROLES
from clutto_bridge.domain.errors import InvalidInput
from clutto_bridge.policy.characters import refused_character
from clutto_bridge.policy.ids import USER_ID

# How much of a refused input a message quotes back.
QUOTED_CHARS = 40


def quoted(raw: object, limit: int = QUOTED_CHARS) -> str:
    """Input as a message shows it: quoted, and only its beginning when it is long."""
    text = raw if isinstance(raw, str) else repr(raw)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text):,} characters)"


def visible_name(what: str, name: str) -> str:
    """Refuse a name with characters that are invisible or change how it is shown, saying which."""
    refused = refused_character(name)
    if refused:
        raise InvalidInput(f"The {what} must not contain control or invisible characters: {refused.describe()}.")
    return name


def team_name(raw: object, max_length: int) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("The team name must be text.")
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("The team name must not be empty.")
    if len(name) > max_length:
        raise InvalidInput(f"The team name is {len(name)} characters long; at most {max_length} are allowed.")
    return visible_name("team name", name)


def room_name(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidInput("The room name must be text.")
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 80:
        raise InvalidInput("A room name has 1 to 80 characters.")
    return visible_name("room name", name)


def user_id(raw: object) -> str:
    if not isinstance(raw, str) or not USER_ID.fullmatch(raw.strip()):
        raise InvalidInput(f"{quoted(raw)} is not a Matrix user ID; write it like @alice:example.com.")
    return raw.strip()


# Why ``owner`` is not a role to give; commands add how to transfer.
OWNER_IS_NOT_GIVEN = (
    "A team has exactly one owner, so owner is not a role to give: ownership moves to another member "
    "with a transfer, made by the owner."
)


def role(raw: object, *, allow_owner: bool = False) -> str:
    value = raw.strip().lower() if isinstance(raw, str) else None
    if value == "owner" and not allow_owner:
        raise InvalidInput(OWNER_IS_NOT_GIVEN)
    roles = ROLES if allow_owner else tuple(r for r in ROLES if r != "owner")
    if value not in roles:
        raise InvalidInput(f"Unknown role {quoted(raw)}; the roles are {', '.join(roles)}.")
    return value
