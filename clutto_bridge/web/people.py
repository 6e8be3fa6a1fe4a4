"""Provisioning API for a person's own things: profile, consent, contacts, own data.

A member (OpenID) acts on themselves. The operator may read, and may correct a profile,
but never consents or imports contacts on someone's behalf: those are the member's acts.
"""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.context import Services
from clutto_bridge.policy.contacts import MAX_BYTES
from clutto_bridge.teams import validation
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.inputs import field, json_object


class PeopleAPI:
    def __init__(self, ctx: Services) -> None:
        self.ctx = ctx

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/policy", self.get_policy)
        router.add_get("/users/{user_id}/profile", self.get_profile)
        router.add_put("/users/{user_id}/profile", self.set_profile)
        router.add_get("/users/{user_id}/consent", self.get_consent)
        router.add_post("/users/{user_id}/consent", self.give_consent)
        router.add_put("/users/{user_id}/contacts/permission", self.allow_contacts)
        router.add_delete("/users/{user_id}/contacts/permission", self.revoke_contacts)
        router.add_get("/users/{user_id}/contacts", self.list_contacts)
        router.add_post("/users/{user_id}/contacts", self.import_contacts)
        router.add_get("/users/{user_id}/data", self.get_data)

    @staticmethod
    def _user(request: web.Request, *, operator: bool) -> str:
        """The user in the path; members reach only themselves, the operator only if ``operator``."""
        user_id = validation.user_id(request.match_info["user_id"])
        actor = request["actor"]
        if actor is None and not operator:
            raise ApiError(403, "M_FORBIDDEN", "Only the member themselves can do this.")
        if actor is not None and actor != user_id:
            raise ApiError(403, "M_FORBIDDEN", f"{actor} may act only on their own data.")
        return user_id

    async def get_policy(self, request: web.Request) -> web.Response:
        consent = self.ctx.settings.consent
        text = consent.current
        return web.json_response({
            "version": text.version, "published": text.published.isoformat(), "reconsent": text.reconsent,
            "summary": text.summary, "url": text.url or None, "text": text.text, "mode": consent.mode,
            "versions": sorted(consent.texts),
        })

    async def get_profile(self, request: web.Request) -> web.Response:
        user_id = validation.user_id(request.match_info["user_id"])
        profile = await self.ctx.profiles.shown(user_id, request["actor"])
        return web.json_response({"user_id": user_id, "profile": profile,
                                  "missing": await self.ctx.profiles.missing(user_id)})

    async def set_profile(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=True)
        body = await json_object(request)
        profile = await self.ctx.profiles.update(user_id, body, actor=request["actor"])
        return web.json_response({"user_id": user_id, "profile": profile,
                                  "missing": await self.ctx.profiles.missing(user_id)})

    async def _consent_json(self, user_id: str) -> dict:
        accepted = await self.ctx.consent.accepted(user_id)
        return {
            "user_id": user_id,
            "current_version": self.ctx.consent.current.version,
            "consented": self.ctx.consent.covers(accepted),
            "accepted": [{"version": v, "accepted_at": ts} for v, ts in accepted],
        }

    async def get_consent(self, request: web.Request) -> web.Response:
        return web.json_response(await self._consent_json(self._user(request, operator=True)))

    async def give_consent(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=False)
        body = await json_object(request)
        await self.ctx.onboarding.accept(user_id, field(body, "version", str))
        return web.json_response(await self._consent_json(user_id))

    async def allow_contacts(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=False)
        await self.ctx.contacts.allow(user_id)
        return web.json_response({"allowed": True})

    async def revoke_contacts(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=False)
        deleted = await self.ctx.contacts.revoke(user_id)
        return web.json_response({"allowed": False, "deleted": deleted})

    async def list_contacts(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=False)
        return web.json_response({"contacts": await self.ctx.contacts.list(user_id)})

    async def import_contacts(self, request: web.Request) -> web.Response:
        """The body is the vCard file itself (Content-Type text/vcard)."""
        user_id = self._user(request, operator=False)
        if request.content_length is not None and request.content_length > MAX_BYTES:
            raise ApiError(413, "M_TOO_LARGE", f"At most {MAX_BYTES:,} bytes of vCard are accepted.")
        if request.content_type not in ("text/vcard", "text/x-vcard", "text/directory"):
            raise ApiError(415, "M_INVALID_PARAM", "Send the vCard file with Content-Type: text/vcard.")
        data = await request.content.read(MAX_BYTES + 1)
        report = await self.ctx.contacts.import_vcards(user_id, data)
        return web.json_response(report.to_json(), status=201)

    async def get_data(self, request: web.Request) -> web.Response:
        user_id = self._user(request, operator=True)
        return web.json_response(await self.ctx.mydata.collect(user_id))
