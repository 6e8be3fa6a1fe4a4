"""Provisioning API for a person's own things: profile, consent, contacts, own data.

A member (OpenID) acts on themselves. The operator may read, and may correct a profile,
but never consents or imports contacts on someone's behalf: those are the member's acts.
"""

from __future__ import annotations

from aiohttp import web

from clutto_bridge.domain import validation
from clutto_bridge.domain.contacts import AlreadyAllowed, ImportNotAllowed
from clutto_bridge.policy.contacts import MAX_BYTES
from clutto_bridge.web import inputs as i, outputs as o
from clutto_bridge.web.endpoints import ApiContext, Endpoints
from clutto_bridge.web.errors import ApiError
from clutto_bridge.web.middleware import ACTOR
from clutto_bridge.web.routes import RawBody, RouteTable

NOT_THEM = {403: "Not this member (the operator cannot act for a member here)"}
VCARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
API = "/_clutto/v1"  # provisioning.PREFIX, which imports this module


def _permission_endpoint(method: str, user_id: str) -> str:
    """How an API user changes the contact permission: the endpoint, not a chat command."""
    return f"{method} {API}/users/{user_id}/contacts/permission"


class PeopleAPI(Endpoints):
    routes = RouteTable()

    def __init__(self, api: ApiContext) -> None:
        self.ctx = api.services

    @staticmethod
    def _user(request: web.Request, *, operator: bool) -> str:
        """The user in the path; members reach only themselves, the operator only if ``operator``."""
        user_id = validation.user_id(request.match_info["user_id"])
        actor = request[ACTOR]
        if actor is None and not operator:
            raise ApiError(403, "M_FORBIDDEN", "Only the member themselves can do this.")
        if actor is not None and actor != user_id:
            raise ApiError(403, "M_FORBIDDEN", f"{actor} may act only on their own data.")
        return user_id

    @routes.get(
        "/policy",
        "The current privacy policy: version, summary, full text, consent mode, all versions",
        responses={200: o.Policy},
    )
    async def get_policy(self, request: web.Request) -> o.Policy:
        consent = self.ctx.settings.consent
        text = consent.current
        return o.Policy(
            version=text.version,
            published=text.published.isoformat(),
            reconsent=text.reconsent,
            summary=text.summary,
            url=text.url or None,
            text=text.text,
            mode=consent.mode,
            versions=sorted(consent.texts),
        )

    @routes.get(
        "/users/{user_id}/profile",
        "A profile (yourself, a teammate, or any for the operator)",
        responses={200: o.Profile},
        errors={403: "Not in a team with this user"},
    )
    async def get_profile(self, request: web.Request) -> o.Profile:
        user_id = validation.user_id(request.match_info["user_id"])
        profile = await self.ctx.profiles.shown(user_id, request[ACTOR])
        return o.Profile(user_id=user_id, profile=profile, missing=await self.ctx.profiles.missing(user_id))

    @routes.put(
        "/users/{user_id}/profile",
        "Set fields (a value) or remove optional ones (null): first_name, last_name, designation, "
        "photo (mxc:// URI of an allowed image)",
        body=i.ProfileChange,
        responses={200: o.Profile},
        errors={403: "Not this member"},
    )
    async def set_profile(self, request: web.Request, body: i.ProfileChange) -> o.Profile:
        user_id = self._user(request, operator=True)
        profile = await self.ctx.profiles.update(user_id, body.root, actor=request[ACTOR])
        return o.Profile(user_id=user_id, profile=profile, missing=await self.ctx.profiles.missing(user_id))

    async def _consent(self, user_id: str) -> o.Consent:
        accepted = await self.ctx.consent.accepted(user_id)
        return o.Consent(
            user_id=user_id,
            current_version=self.ctx.consent.current.version,
            consented=self.ctx.consent.covers(accepted),
            accepted=[o.Acceptance(version=v, accepted_at=ts) for v, ts in accepted],
        )

    @routes.get(
        "/users/{user_id}/consent",
        "Consent records and whether they cover the current version",
        responses={200: o.Consent},
        errors={403: "Not this member"},
    )
    async def get_consent(self, request: web.Request) -> o.Consent:
        user_id = self._user(request, operator=True)
        await self.ctx.mydata.consent_read(user_id, reader=request[ACTOR])
        return await self._consent(user_id)

    @routes.post(
        "/users/{user_id}/consent",
        "Accept the current policy version (restores sending in block mode)",
        body=i.ConsentGiven,
        responses={200: o.Consent},
        errors={**NOT_THEM, 409: "Already accepted"},
    )
    async def give_consent(self, request: web.Request, body: i.ConsentGiven) -> o.Consent:
        user_id = self._user(request, operator=False)
        await self.ctx.onboarding.accept(user_id, body.version)
        return await self._consent(user_id)

    @routes.put(
        "/users/{user_id}/contacts/permission",
        "Allow contact import",
        responses={200: o.ContactsAllowed},
        errors={**NOT_THEM, 409: "Already allowed"},
    )
    async def allow_contacts(self, request: web.Request) -> o.ContactsAllowed:
        user_id = self._user(request, operator=False)
        try:
            await self.ctx.contacts.allow(user_id)
        except AlreadyAllowed as e:
            raise ApiError(e.status, e.errcode, f"{e.message} {_permission_endpoint('DELETE', user_id)} withdraws it.")
        return o.ContactsAllowed(allowed=True)

    @routes.delete(
        "/users/{user_id}/contacts/permission",
        "Revoke contact import; deletes every imported contact",
        responses={200: o.ContactsRevoked},
        errors={**NOT_THEM, 409: "Not allowed, nothing to revoke"},
    )
    async def revoke_contacts(self, request: web.Request) -> o.ContactsRevoked:
        user_id = self._user(request, operator=False)
        deleted = await self.ctx.contacts.revoke(user_id)
        return o.ContactsRevoked(allowed=False, deleted=deleted)

    @routes.get("/users/{user_id}/contacts", "Imported contacts", responses={200: o.Contacts}, errors=NOT_THEM)
    async def list_contacts(self, request: web.Request) -> o.Contacts:
        user_id = self._user(request, operator=False)
        return o.Contacts(contacts=[o.Contact.model_validate(c) for c in await self.ctx.contacts.list(user_id)])

    @routes.post(
        "/users/{user_id}/contacts",
        "Import a vCard file; matches are offered as invites",
        body=RawBody(i.VCardFile, VCARD_TYPES),
        responses={201: o.ImportReport},
        errors={403: "No permission, or not this member", 413: "Over 1 MiB", 415: "Not text/vcard"},
    )
    async def import_contacts(self, request: web.Request) -> o.ImportReport:
        """The body is the vCard file itself (Content-Type text/vcard)."""
        user_id = self._user(request, operator=False)
        if request.content_length is not None and request.content_length > MAX_BYTES:
            raise ApiError(413, "M_TOO_LARGE", f"At most {MAX_BYTES:,} bytes of vCard are accepted.")
        if request.content_type not in VCARD_TYPES:
            raise ApiError(415, "M_INVALID_PARAM", "Send the vCard file with Content-Type: text/vcard.")
        data = await request.content.read(MAX_BYTES + 1)
        try:
            report = await self.ctx.contacts.import_vcards(user_id, data)
        except ImportNotAllowed as e:
            raise ApiError(
                e.status, e.errcode, f"{e.message} The member grants it with {_permission_endpoint('PUT', user_id)}."
            )
        return o.ImportReport.of(report)

    @routes.get(
        "/users/{user_id}/data",
        "Everything the bridge stores about a user (their own, or any for the operator)",
        responses={200: o.MyData},
        errors={403: "Not this member"},
    )
    async def get_data(self, request: web.Request) -> o.MyData:
        user_id = self._user(request, operator=True)
        return o.MyData.model_validate(await self.ctx.mydata.collect(user_id, reader=request[ACTOR]))
