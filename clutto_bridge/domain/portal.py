"""Access to the privacy portal: one-time sign-in links, server-side sessions, cookie choices (P5).

A member asks the bot for a link (``!clutto portal``); the link carries a random token that
works once, for ``portal.link_lifetime``, and only its SHA-256 hash is stored, so a copy of
the database signs nobody in. Sessions are kept here too, by the hash of the id in the
session cookie. The cookie choice is recorded with its time and the policy version in force,
and also as a privacy choice, so ``mydata`` shows it beside the others.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from clutto_bridge.clock import Clock
from clutto_bridge.config import Settings
from clutto_bridge.db.portal import CookieChoiceRow, PortalStore, SignInLink
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.errors import NotAllowed
from clutto_bridge.policy.cookies import Cookie, CookieChoice, offered

HOUR_MS = 3600 * 1000

log = logging.getLogger("clutto.portal")

LINK_REFUSED = (
    "This sign-in link does not work: it was used already or has expired. Send `portal` to the bot in your "
    "direct chat for a new one."
)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(kw_only=True, eq=False, repr=False)
class PortalAccess:
    store: PortalStore
    consent: ConsentService
    settings: Settings
    clock: Clock

    @property
    def base_url(self) -> str:
        return self.settings.portal.base_url(self.settings.appservice.url)

    @property
    def registry(self) -> tuple[Cookie, ...]:
        return self.settings.policy.cookies

    async def issue_link(self, user_id: str) -> str:
        """A new one-time sign-in link for ``user_id``, refused past ``portal.links_per_hour``."""
        portal = self.settings.portal
        now = self.clock.now_ms()
        if await self.store.links_since(user_id, now - HOUR_MS) >= portal.links_per_hour:
            raise NotAllowed(
                f"You asked for {portal.links_per_hour} sign-in links in the last hour, the most there can be. "
                "Use the last one, or ask again later."
            )
        await self.store.forget_links_before(now - HOUR_MS)
        token = secrets.token_urlsafe(32)
        await self.store.add_link(SignInLink(secret_hash(token), user_id, now, now + portal.link_lifetime * 1000, None))
        return f"{self.base_url}/signin?token={token}"

    async def redeem(self, token: str) -> str:
        """The user a link signs in, once: a second use, or one after it expired, is refused."""
        link = await self.store.use_link(secret_hash(token), self.clock.now_ms())
        if link is None:
            log.info("Portal sign-in refused: %s", await self._why_refused(token))
            raise NotAllowed(LINK_REFUSED)
        return link.user_id

    async def _why_refused(self, token: str) -> str:
        """For the operator's log: which of the reasons the member's page gives in one sentence."""
        link = await self.store.link(secret_hash(token))
        if link is None:
            return "no such link (mistyped, or forgotten an hour after it expired)"
        if link.used_at is not None:
            return f"the link was already used {max(0, self.clock.now_ms() - link.used_at) // 1000} s ago"
        return f"the link expired {max(0, self.clock.now_ms() - link.expires_at) // 1000} s ago"

    async def session(self, session_id: str) -> str | None:
        """The stored data (JSON) of a live session."""
        return await self.store.session(secret_hash(session_id), self.clock.now_ms())

    async def keep_session(self, session_id: str, user_id: str | None, data: str, lifetime_s: int) -> None:
        """Store a session (``user_id`` once signed in, so erasing a person ends their sessions)."""
        now = self.clock.now_ms()
        await self.store.forget_sessions_before(now)
        await self.store.save_session(secret_hash(session_id), user_id, data, now + lifetime_s * 1000)

    async def end_session(self, session_id: str) -> None:
        await self.store.end_session(secret_hash(session_id))

    async def cookie_choice(self, user_id: str) -> CookieChoice | None:
        """The choice in force, or None when the member has not chosen yet (banner)."""
        choices = await self.store.cookie_choices(user_id)
        return CookieChoice.parse(choices[-1].categories) if choices else None

    async def cookie_history(self, user_id: str) -> list[CookieChoiceRow]:
        return await self.store.cookie_choices(user_id)

    async def choose_cookies(self, user_id: str, choice: CookieChoice) -> CookieChoice:
        """Record the choice, limited to the categories the registry holds a cookie in; returns
        what was recorded."""
        choice = choice.within(offered(self.registry))
        version = self.settings.consent.version
        await self.store.record_cookie_choice(CookieChoiceRow(user_id, choice.stored(), version, self.clock.now_ms()))
        await self.consent.record_choice(user_id, "cookies", choice.stored() or "necessary_only")
        return choice
