"""What every portal page shares: who is signed in, the cookie banner, the theme, rendering."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from clutto_bridge.context import Services
from clutto_bridge.db.team import Team
from clutto_bridge.domain.portal import PortalAccess
from clutto_bridge.domain.service import MANAGERS
from clutto_bridge.policy.cookies import offered
from clutto_bridge.web.portal.cookies import PREFERENCES_COOKIE, THEMES, CookieJar
from clutto_bridge.web.portal.security import csrf_token

SIGNED_OUT = (
    "You are not signed in. Send `portal` to the Clutto bot in your direct chat with it: it answers with a "
    "sign-in link that works once."
)


class Pages:
    def __init__(self, ctx: Services, jar: CookieJar, root: str) -> None:
        assert ctx.portal is not None
        self.root = root
        self.access: PortalAccess = ctx.portal
        self.teams = ctx.teams
        self.jar = jar

    async def user(self, request: web.Request) -> str | None:
        session = await get_session(request)
        return session.get("user")

    async def member(self, request: web.Request) -> str:
        user = await self.user(request)
        if user is None:
            raise web.HTTPUnauthorized(text=SIGNED_OUT)
        return user

    async def managed_teams(self, user: str) -> list[Team]:
        return [t for t in await self.teams.of_user(user) if await self.teams.role_of(t, user) in MANAGERS]

    async def render(
        self, request: web.Request, template: str, context: dict[str, Any], status: int = 200
    ) -> web.Response:
        session = await get_session(request)
        user = session.get("user")
        choice = await self.access.cookie_choice(user) if user else None
        theme = request.cookies.get(PREFERENCES_COOKIE, "") if choice and choice.allows("preferences") else ""
        shared = {
            "user": user,
            # A session (and its cookie) starts only where a form needs it: not on the privacy page.
            "csrf": csrf_token(session) if user or context.get("anonymous_form") else "",
            # Asked only while there is something to choose: a category that holds a cookie.
            "banner": user is not None and choice is None and bool(offered(self.access.registry)),
            "offered": offered(self.access.registry),
            "theme": theme.removeprefix("theme-") if theme.removeprefix("theme-") in THEMES else "light",
            "managed": await self.managed_teams(user) if user else [],
        }
        response = aiohttp_jinja2.render_template(template, request, {**shared, **context}, status=status)
        if user is not None:
            self.jar.apply(request, response, choice)  # a cookie the choice does not allow goes
        return response

    def back(self, path: str) -> web.Response:
        """Post/redirect/get: after a form, the page it belongs to (``path`` under the portal's root)."""
        return web.Response(status=303, headers={"Location": self.root + path})
