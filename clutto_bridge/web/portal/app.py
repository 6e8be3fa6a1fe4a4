"""The portal's aiohttp application: templates, sessions, security middleware and the pages.

It is one more entry point, like the bot commands and the provisioning API: every page calls
the same domain services in ``domain/``, so accepting the policy here is the same consent
record as the bot's ``accept``, and a role changed here follows the same power level sync.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware
from yarl import URL

from clutto_bridge.context import Services
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.durations import format_duration
from clutto_bridge.web.portal.cookies import SESSION_COOKIE, CookieJar
from clutto_bridge.web.portal.member import MemberPages
from clutto_bridge.web.portal.pages import Pages
from clutto_bridge.web.portal.security import csrf_check, error_pages, security_headers
from clutto_bridge.web.portal.sessions import DatabaseStorage
from clutto_bridge.web.portal.team import TeamPages

PORTAL_PREFIX = "/portal"
HERE = Path(__file__).parent


class Portal:
    def __init__(self, ctx: Services, audit: AuditLog) -> None:
        access = ctx.portal
        assert access is not None, "the portal is built only while portal.enabled is on"
        base = URL(access.base_url)
        https = base.scheme == "https"
        root = base.path.rstrip("/")
        cookie_path = root or "/"
        jar = CookieJar(ctx.settings.policy.cookies, secure=https, path=cookie_path)  # ConfigError if incomplete
        storage = DatabaseStorage(
            access, cookie_name=SESSION_COOKIE, max_age=jar.lifetime(SESSION_COOKIE), secure=https, path=cookie_path
        )
        # A form's body is limited by the appservice listener (aiohttp's 1 MiB), which reads requests.
        self.app = web.Application(
            middlewares=[security_headers(https=https), error_pages, session_middleware(storage), csrf_check],
        )
        aiohttp_jinja2.setup(
            self.app,
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # templates are package data: read once
        )
        env = aiohttp_jinja2.get_env(self.app)
        env.globals["root"] = root
        env.filters["duration"] = format_duration
        self.app.router.add_static("/static", HERE / "static")
        pages = Pages(ctx, jar, root)
        MemberPages(ctx, pages).register(self.app.router)
        TeamPages(ctx, audit, pages).register(self.app.router)
