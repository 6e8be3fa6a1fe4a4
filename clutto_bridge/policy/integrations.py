"""Which third-party integrations a team room may hold."""

from __future__ import annotations

from urllib.parse import urlsplit

WIDGET_EVENT_TYPES = ("m.widget", "im.vector.modular.widgets")


def outsider_allowed(user_id: str, allowed_bots: set[str]) -> bool:
    """Someone who is not a team member may be in a team room only as an allowed bot."""
    return user_id in allowed_bots


def outsider_reason(team_name: str, user_id: str, former_member: bool) -> str:
    """Why someone who is neither a current member nor an allowed bot is removed from a team
    room: a person is told about the team, not about integrations. (A bot the team stops
    allowing is removed by ``integrations deny``, which says so.)"""
    if former_member:
        return f"{user_id} is no longer a member of the team {team_name}"
    return (
        f"{user_id} is not a member of the team {team_name}: only its members and the bots it allows may be "
        "in its rooms"
    )


def widget_allowed(url: object, prefixes: list[str]) -> bool:
    """A widget is allowed when its URL starts with an allowed prefix, scheme and host included.

    The host is compared as parsed, so ``https://meet.example.com.evil.net/`` does not pass
    for the prefix ``https://meet.example.com``.
    """
    if not isinstance(url, str):
        return False
    target = urlsplit(url)
    for prefix in prefixes:
        allowed = urlsplit(prefix)
        if (target.scheme, target.netloc.lower()) != (allowed.scheme, allowed.netloc.lower()):
            continue
        if target.path.startswith(allowed.path):
            return True
    return False
