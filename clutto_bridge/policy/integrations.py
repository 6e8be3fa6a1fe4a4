"""Which third-party integrations a team room may hold."""

from __future__ import annotations

from urllib.parse import urlsplit

WIDGET_EVENT_TYPES = ("m.widget", "im.vector.modular.widgets")


def outsider_allowed(user_id: str, allowed_bots: set[str]) -> bool:
    """Someone who is not a team member may be in a team room only as an allowed bot."""
    return user_id in allowed_bots


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
