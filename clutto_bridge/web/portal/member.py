"""A member's pages: sign-in, the policy and its versions, cookies, profile, marketing,
contacts and "my data". Each form calls the same domain service as the bot command."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp_session import get_session, new_session

from clutto_bridge.clock import utc_minute
from clutto_bridge.context import Services
from clutto_bridge.domain.contacts import AlreadyAllowed
from clutto_bridge.domain.errors import Conflict
from clutto_bridge.domain.formatting import document
from clutto_bridge.policy.cookies import NECESSARY_ONLY, CookieChoice, accept_all, offered
from clutto_bridge.promises import check
from clutto_bridge.web.portal import forms as f, mydata
from clutto_bridge.web.portal.cookies import PREFERENCES_COOKIE
from clutto_bridge.web.portal.forms import parse_form
from clutto_bridge.web.portal.pages import Pages


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    return utc_minute(ms)


class MemberPages:
    def __init__(self, ctx: Services, pages: Pages) -> None:
        self.ctx = ctx
        self.pages = pages
        self.access = pages.access

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.home)
        router.add_get("/signin", self.signin_page)
        router.add_post("/signin", self.signin)
        router.add_post("/signout", self.signout)
        router.add_get("/privacy", self.privacy)
        router.add_get("/cookies", self.cookies_page)
        router.add_post("/cookies", self.choose_cookies)
        router.add_post("/theme", self.theme)
        router.add_get("/policy", self.policy_page)
        router.add_post("/policy/accept", self.accept)
        router.add_get("/profile", self.profile_page)
        router.add_post("/profile", self.profile_save)
        router.add_post("/profile/photo", self.photo_upload)
        router.add_post("/marketing", self.marketing)
        router.add_get("/contacts", self.contacts_page)
        router.add_post("/contacts", self.contacts_change)
        router.add_get("/mydata", self.mydata_page)
        router.add_get("/mydata.json", self.mydata_download)

    # --- signing in ---------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        consented = await self.ctx.consent.has_consented(user)
        return await self.pages.render(
            request,
            "home.html",
            {
                "consented": consented,
                "version": self.ctx.consent.current.version,
                "missing": await self.ctx.profiles.missing(user),
            },
        )

    async def signin_page(self, request: web.Request) -> web.Response:
        """The link opens a page with a button: a link preview or a mail scanner fetching the
        URL does not use up the one-time token; only the member's press does."""
        token = request.query.get("token", "")
        if not f.SIGN_IN_TOKEN.fullmatch(token):
            raise web.HTTPBadRequest(text="This sign-in link is incomplete. Send `portal` to the bot for a new one.")
        return await self.pages.render(request, "signin.html", {"token": token, "anonymous_form": True})

    async def signin(self, request: web.Request) -> web.Response:
        form = await parse_form(request, f.SignIn)
        user = await self.access.redeem(form.token)
        old = await get_session(request)
        if old.identity is not None:
            await self.access.end_session(old.identity)  # a new session id on sign-in: no fixation
        session = await new_session(request)
        session["user"] = user
        return self.pages.back("/")

    async def signout(self, request: web.Request) -> web.Response:
        session = await get_session(request)
        session.invalidate()  # the storage deletes it on the server and expires the cookie
        return self.pages.back("/privacy")

    # --- cookies ------------------------------------------------------------------------------

    async def privacy(self, request: web.Request) -> web.Response:
        return await self.pages.render(
            request,
            "privacy.html",
            {
                "registry": self.access.registry,
                "promises": check(self.ctx.settings),
            },
        )

    async def cookies_page(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        choice = await self.access.cookie_choice(user)
        history = [
            (when(c.ts), c.categories or "necessary only", c.policy_version)
            for c in await self.access.cookie_history(user)
        ]
        return await self.pages.render(
            request,
            "cookies.html",
            {
                "registry": self.access.registry,
                "choice": choice,
                "history": history,
            },
        )

    async def choose_cookies(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        form = await parse_form(request, f.CookieForm)
        if form.choice == "all":
            choice = accept_all(self.access.registry)
        elif form.choice == "necessary":
            choice = NECESSARY_ONLY
        else:
            choice = CookieChoice(frozenset(c for c in offered(self.access.registry) if getattr(form, c)))
        choice = await self.access.choose_cookies(user, choice)
        response = self.pages.back("/cookies")
        if choice.allows("preferences") and PREFERENCES_COOKIE not in request.cookies:
            self.pages.jar.set(response, PREFERENCES_COOKIE, "theme-light", choice)
        self.pages.jar.apply(request, response, choice)  # withdrawing deletes them now
        return response

    async def theme(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        form = await parse_form(request, f.ThemeForm)
        choice = await self.access.cookie_choice(user)
        if not (choice and choice.allows("preferences")):
            raise Conflict(
                "Remembering a theme needs a preferences cookie: allow preferences on the cookie page first."
            )
        response = self.pages.back("/cookies")
        self.pages.jar.set(response, PREFERENCES_COOKIE, f"theme-{form.theme}", choice)
        return response

    # --- policy, profile, choices -----------------------------------------------------------------

    async def policy_page(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        consent = self.ctx.consent
        accepted = await consent.accepted(user)
        versions = sorted(consent.texts.values(), key=lambda t: t.published, reverse=True)
        return await self.pages.render(
            request,
            "policy.html",
            {
                "current": consent.current,
                "text_html": document(consent.current.text).html,
                "versions": versions,
                "accepted": [(v, when(ts)) for v, ts in accepted],
                "consented": consent.covers(accepted),
            },
        )

    async def accept(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        await self.ctx.onboarding.accept(user, None)  # the bot's accept: same record, same unblocking
        return self.pages.back("/policy")

    async def profile_page(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        return await self.pages.render(
            request,
            "profile.html",
            {
                "profile": await self.ctx.profiles.get(user),
                "rules": self.ctx.settings.profile,
                "marketing": await self.ctx.notices.marketing_opted_in(user),
            },
        )

    async def profile_save(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        form = await parse_form(request, f.ProfileForm)
        rules = self.ctx.settings.profile
        current = await self.ctx.profiles.get(user)
        changes: dict[str, object] = {}
        for field in ("first_name", "last_name", "designation"):
            value = getattr(form, field) or None
            if field in rules.allowed and value != current.get(field):
                changes[field] = value
        if changes:
            await self.ctx.profiles.update(user, changes, actor=user)
        return self.pages.back("/profile")

    async def photo_upload(self, request: web.Request) -> web.Response:
        """A multipart form with the image; checked by the same rules as a photo sent to the bot."""
        user = await self.pages.member(request)
        form = await request.post()  # read (and size-limited) by aiohttp; the CSRF check read it first
        upload = form.get("photo")
        if not isinstance(upload, web.FileField):
            raise web.HTTPBadRequest(text="Choose an image file to upload.")
        await self.ctx.profiles.upload_photo(user, upload.file.read(), upload.content_type)
        return self.pages.back("/profile")

    async def marketing(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        form = await parse_form(request, f.MarketingForm)
        await self.ctx.notices.set_marketing(user, form.marketing == "on")
        return self.pages.back("/profile")

    async def contacts_page(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        return await self.pages.render(
            request,
            "contacts.html",
            {
                "permitted": await self.ctx.contacts.permitted(user),
                "contacts": await self.ctx.contacts.list(user),
            },
        )

    async def contacts_change(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        form = await parse_form(request, f.ContactsForm)
        if form.action == "allow":
            try:
                await self.ctx.contacts.allow(user)
            except AlreadyAllowed:
                pass  # the page already says so; pressing twice is not an error
        else:
            await self.ctx.contacts.revoke(user)
        return self.pages.back("/contacts")

    async def mydata_page(self, request: web.Request) -> web.Response:
        user = await self.pages.member(request)
        data = await self.ctx.mydata.collect(user, reader=user)
        return await self.pages.render(request, "mydata.html", {"v": mydata.page(data)})

    async def mydata_download(self, request: web.Request) -> web.Response:
        """The same JSON as ``mydata export`` sends in the chat."""
        user = await self.pages.member(request)
        data = json.dumps(await self.ctx.mydata.collect(user, reader=user), indent=2, sort_keys=True).encode()
        await self.ctx.mydata.exported(user, len(data))
        return web.Response(
            body=data,
            content_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="clutto-mydata.json"',
            },
        )
