"""Every cookie the portal's code sets, declared once, and the only way it sets or deletes them.

``DECLARED`` is checked against the operator's registry (``policy.cookies``) when the portal
is built, so a cookie the code would set that the registry does not list stops the bridge at
start-up. ``CookieJar.set`` refuses a name that is not declared or whose category the
visitor's choice does not allow, so no code path can set one by mistake.
"""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.config import ConfigError
from clutto_bridge.policy.cookies import Cookie, CookieChoice, allowed, to_delete, undeclared

SESSION_COOKIE = "clutto_session"
PREFERENCES_COOKIE = "clutto_prefs"
DECLARED = {SESSION_COOKIE: "necessary", PREFERENCES_COOKIE: "preferences"}
THEMES = ("light", "dark")


def check_registry(registry: tuple[Cookie, ...]) -> None:
    problems = undeclared(registry, DECLARED)
    if problems:
        raise ConfigError("policy.cookies", "; ".join(problems))


class CookieJar:
    """The cookies of one portal: the registry's lifetimes, Secure when served over https."""

    def __init__(self, registry: tuple[Cookie, ...], *, secure: bool, path: str) -> None:
        check_registry(registry)
        self.registry = registry
        self.by_name = {c.name: c for c in registry}
        self.secure = secure
        self.path = path

    def lifetime(self, name: str) -> int | None:
        seconds = self.by_name[name].lifetime
        return seconds or None

    def set(self, response: web.StreamResponse, name: str, value: str, choice: CookieChoice | None) -> None:
        if name not in DECLARED or name not in allowed(self.registry, choice):
            raise RuntimeError(f"the portal may not set the cookie {name} under this choice")
        response.set_cookie(
            name,
            value,
            max_age=self.lifetime(name),
            path=self.path,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )

    def apply(self, request: web.Request, response: web.StreamResponse, choice: CookieChoice | None) -> None:
        """Delete (Set-Cookie with an expiry in the past) what the choice no longer allows."""
        for name in sorted(to_delete(self.registry, choice, set(request.cookies))):
            response.del_cookie(name, path=self.path)
