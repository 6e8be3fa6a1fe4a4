"""SCIM provisioning of a team: its bearer tokens, and the identity provider's users and groups
as the team's members and roles.

Every change goes through the operations the bot and the API use (``MemberService``'s invite,
create_account, change_role and remove; ``ProfileService.update``), with the actor
``scim:<token id>``, so it is checked, audited and enforced the same way. This module adds only
what SCIM needs on top: the token, the provider's userName and externalId, ``active``, and
a version per user for ETags.

Only what P2/P3 allow is kept of what a provider sends: userName, externalId, the given and
family name and title (as profile fields the policy allows) and the primary email (the account's,
when Clutto creates it). The caller passes nothing else in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field

from clutto_bridge.clock import Clock
from clutto_bridge.config import ScimSettings
from clutto_bridge.db import member as membership
from clutto_bridge.db.account import AccountStore
from clutto_bridge.db.holds import WHOLE_TEAM
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.profile import ProfileStore
from clutto_bridge.db.scim import ScimStore, ScimToken, ScimUser
from clutto_bridge.db.team import RoomStore, Team, TeamState
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound, TeamError
from clutto_bridge.domain.members import MemberService
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.domain.retention import RetentionService
from clutto_bridge.domain.rooms import RoomService
from clutto_bridge.domain.scim_rooms import ScimRoomGroups, provisioned_users
from clutto_bridge.domain.service import SCIM_ACTOR, TeamService
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy.audit_actions import AuditAction
from clutto_bridge.policy.profile import ProfileRules

log = logging.getLogger("clutto.scim")

TOKEN_PREFIX = "clutto-scim"
# last_used_at is written at most this often per token (a provider's sync makes many requests).
USE_RECORD_MS = 60_000
# The groups SCIM sees: the team's roles other than owner (which SCIM never changes).
GROUPS = {"admins": "admin", "members": "member", "guests": "guest"}
ROLE_GROUP = {role: group for group, role in GROUPS.items()}
_LOCALPART = re.compile(r"[^a-z0-9._=\-/]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ScimRefused(NotAllowed):
    """The team cannot be provisioned now (legal hold, being deleted)."""


class ReactivationFailed(TeamError):
    """The homeserver refused to reactivate an account Clutto deactivated (a SCIM 502)."""

    status = 502


@dataclass(frozen=True)
class UserFields:
    """What of a SCIM User Clutto keeps; everything else was dropped before this was built."""

    user_name: str
    external_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    title: str | None = None
    email: str | None = None
    active: bool | None = True  # None: not said, which counts as active


@dataclass(frozen=True)
class ProvisionedUser:
    """A SCIM user as the provider reads it back: the stored row, the profile and the role."""

    row: ScimUser
    fields: UserFields
    role: str | None  # None: not a current member (inactive)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def localpart_of(user_name: str) -> str:
    """The Matrix localpart for a provider's userName: an email's local part, lower case, with
    characters Matrix does not allow left out."""
    local = user_name.strip().split("@", 1)[0].lower()
    local = _LOCALPART.sub("", local)[:64]
    if not local:
        raise InvalidInput(f"userName {user_name!r} gives no usable Matrix user name (a-z, 0-9, . _ = - /).")
    return local


@dataclass(kw_only=True, eq=False, repr=False)
class ScimService:
    store: ScimStore
    teams: TeamService
    members: MemberService
    profiles: ProfileService
    profile_store: ProfileStore
    profile_rules: ProfileRules
    member_store: MemberStore
    accounts: AccountStore
    retention: RetentionService
    notices: NoticeService
    admin: SynapseAdmin
    audit: AuditLog
    clock: Clock
    domain: str
    rooms: RoomService
    room_store: RoomStore
    homeserver: Homeserver
    settings: ScimSettings
    room_groups: ScimRoomGroups = field(init=False)

    def __post_init__(self) -> None:
        self.room_groups = ScimRoomGroups(
            store=self.store,
            rooms=self.rooms,
            room_store=self.room_store,
            teams=self.teams,
            homeserver=self.homeserver,
            audit=self.audit,
            clock=self.clock,
            settings=self.settings,
            role_groups=frozenset(GROUPS),
            writable=self.check_writable,
        )

    # --- tokens ----------------------------------------------------------------------

    async def new_token(self, team: Team, name: str, *, actor: str | None) -> tuple[ScimToken, str]:
        """A new bearer token for ``team``: the row, and the secret, which is shown once."""
        await self.teams.require_manager(team, actor)
        name = " ".join(name.split()) if isinstance(name, str) else ""
        if not 1 <= len(name) <= 64:
            raise InvalidInput("Give the token a name of 1 to 64 characters (the identity provider's, say).")
        if any(
            t.name.casefold() == name.casefold() and t.revoked_at is None for t in await self.store.tokens_of(team.id)
        ):
            raise Conflict(f"{team.name} already has a token named {name!r}; revoke it first or choose another name.")
        token_id = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}.{token_id}.{secrets.token_urlsafe(32)}"
        token = ScimToken(token_id, team.id, name, secret_hash(secret), actor, self.clock.now_ms())
        await self.store.add_token(token)
        await self.audit.record(team, actor, AuditAction.SCIM_TOKEN_CREATED, token_id, name=name)
        return token, secret

    async def revoke_token(self, team: Team, token_id: str, *, actor: str | None) -> ScimToken:
        await self.teams.require_manager(team, actor)
        token = await self.store.token(token_id.strip()) if isinstance(token_id, str) else None
        if token is None or token.team_id != team.id:
            raise NotFound(f"{team.name} has no SCIM token {token_id!r}.")
        if token.revoked_at is not None:
            raise Conflict(f"The token {token.id} ({token.name}) is revoked already.")
        await self.store.revoke(token.id, self.clock.now_ms())
        await self.audit.record(team, actor, AuditAction.SCIM_TOKEN_REVOKED, token.id, name=token.name)
        revoked = await self.store.token(token.id)
        assert revoked is not None, "revoked, not deleted"
        return revoked

    async def tokens(self, team: Team, *, actor: str | None) -> list[ScimToken]:
        await self.teams.require_manager(team, actor)
        return await self.store.tokens_of(team.id)

    async def authenticate(self, secret: str) -> ScimToken | None:
        """The live token with this secret, or None. Its last use is recorded (at most once a minute)."""
        prefix, _, rest = secret.partition(".")
        token_id, _, _ = rest.partition(".")
        if prefix != TOKEN_PREFIX or not token_id:
            return None
        token = await self.store.token(token_id)
        if token is None or token.revoked_at is not None:
            return None
        if not hmac.compare_digest(token.secret_hash, secret_hash(secret)):
            return None
        now = self.clock.now_ms()
        if token.last_used_at is None or now - token.last_used_at >= USE_RECORD_MS:
            await self.store.used(token.id, now)
            token.last_used_at = now
        return token

    @staticmethod
    def actor(token: ScimToken) -> str:
        return f"{SCIM_ACTOR}{token.id}"

    async def check_writable(self, team: Team) -> None:
        """SCIM changes nothing in a team being deleted or under a legal hold of the whole team."""
        if team.state != TeamState.ACTIVE:
            raise ScimRefused(f"{team.name} is being deleted or purged; the identity provider may not change it.")
        if WHOLE_TEAM in await self.retention.holds(team):
            raise ScimRefused(f"{team.name} is under a legal hold; its membership may not change until it is lifted.")

    # --- users -----------------------------------------------------------------------

    async def _fields(self, row: ScimUser) -> UserFields:
        profile = await self.profiles.get(row.user_id)
        account = await self.accounts.get(row.user_id)
        return UserFields(
            row.user_name,
            row.external_id,
            profile.get("first_name"),
            profile.get("last_name"),
            profile.get("designation"),
            account.email if account else None,
            row.active,
        )

    async def view(self, row: ScimUser) -> ProvisionedUser:
        team = await self.teams.get(row.team_id)
        return ProvisionedUser(row, await self._fields(row), await self.teams.role_of(team, row.user_id))

    async def users(self, team: Team) -> list[ScimUser]:
        return await self.store.users_of(team.id)

    async def user(self, team: Team, scim_id: str) -> ScimUser:
        row = await self.store.user(team.id, scim_id)
        if row is None:
            raise NotFound(f"No user {scim_id!r} in this team.")
        return row

    async def user_by_name(self, team: Team, user_name: str) -> ScimUser | None:
        return await self.store.user_by_name(team.id, user_name)

    async def create_user(self, team: Team, fields: UserFields, token: ScimToken) -> ScimUser:
        """Provision a person: create their account if it does not exist (as ``account create``
        does) or invite the existing one, set the profile fields the policy allows."""
        await self.check_writable(team)
        actor = self.actor(token)
        if await self.store.user_by_name(team.id, fields.user_name):
            raise Conflict(f"userName {fields.user_name!r} is provisioned already.")
        local = localpart_of(fields.user_name)
        user_id = f"@{local}:{self.domain}"
        if await self.store.user_by_matrix_id(team.id, user_id):
            raise Conflict(f"{user_id} is provisioned already under another userName.")
        if fields.active is not False:
            await self._join(team, user_id, local, fields, actor)
        now = self.clock.now_ms()
        row = ScimUser(
            str(uuid.uuid4()), team.id, user_id, fields.user_name, fields.external_id, fields.active, 1, now, now
        )
        await self.store.add_user(row)
        if fields.active is not False:
            await self._set_profile(user_id, fields, None)
        else:  # no account yet: kept, and published when the person is activated
            await self._keep_profile(user_id, fields)
        await self.audit.record(
            team, actor, AuditAction.SCIM_USER_PROVISIONED, user_id, scim_id=row.id, active=fields.active
        )
        return row

    async def _join(self, team: Team, user_id: str, local: str, fields: UserFields, actor: str) -> None:
        current = await self.teams.role_of(team, user_id)
        if current is not None:
            return  # a member already (the owner, or added by hand): SCIM now manages them
        try:
            exists = await self.admin.account_exists(user_id)
            if exists and await self.admin.is_deactivated(user_id):
                await self._reactivate(user_id, fields)
        except AdminUnavailable as e:
            raise NotAllowed(f"Provisioning needs the homeserver admin API: {e}.") from None
        if exists:
            await self.members.invite(team, user_id, "member", actor=actor)
        else:
            # The password is random and never shown: people sign in through the provider's SSO or reset it.
            await self.members.create_account(
                team, local, fields.email, secrets.token_urlsafe(24), "member", actor=actor
            )

    async def _reactivate(self, user_id: str, fields: UserFields) -> None:
        """Activating a person whose account ``scim.deactivate`` closed opens it again, with a new
        random password (they sign in through SSO or reset it). Any other deactivated account is
        not Clutto's to open: a SCIM 403 says so."""
        account = await self.accounts.get(user_id)
        if account is None:
            raise NotAllowed(
                f"{user_id} is deactivated on the homeserver and was not created by Clutto; "
                "the homeserver's administrator must reactivate it."
            )
        email = fields.email or account.email
        try:
            await self.admin.reactivate(user_id, secrets.token_urlsafe(24), email)
        except MatrixRequestError as e:
            raise ReactivationFailed(
                f"The homeserver could not reactivate {user_id} ({e}); the person stays inactive. Its "
                "administrator can reactivate the account, then the identity provider activates them again."
            ) from None
        log.info("Reactivated the account %s for its identity provider", user_id)

    async def _keep_profile(self, user_id: str, fields: UserFields) -> None:
        allowed = set(self.profile_rules.allowed)
        profile = await self.profile_store.get(user_id)
        wanted = {"first_name": fields.given_name, "last_name": fields.family_name, "designation": fields.title}
        profile.update({f: v for f, v in wanted.items() if f in allowed})
        await self.profile_store.save(user_id, profile, self.clock.now_ms())

    async def _set_profile(self, user_id: str, fields: UserFields, before: UserFields | None) -> list[str]:
        wanted = {"first_name": fields.given_name, "last_name": fields.family_name, "designation": fields.title}
        allowed = set(self.profile_rules.allowed)
        old = (
            {"first_name": before.given_name, "last_name": before.family_name, "designation": before.title}
            if before
            else {}
        )
        changes = {
            f: v
            for f, v in wanted.items()
            if f in allowed
            and (v != old.get(f) if before else v is not None)
            and not (v is None and f in self.profile_rules.required)
        }
        if not changes or not user_id.endswith(":" + self.domain):
            return []
        try:
            await self.profiles.update(user_id, changes, actor=None)
        except MatrixRequestError as e:  # saved; the homeserver could not show it yet
            log.warning("Saved the profile of %s but could not publish it: %s", user_id, e)
        return sorted(changes)

    async def update_user(self, team: Team, row: ScimUser, fields: UserFields, token: ScimToken) -> ScimUser:
        """Apply a replaced or patched user: the profile, userName/externalId, and ``active``
        (false removes the member from the team at once, true invites them back)."""
        await self.check_writable(team)
        actor = self.actor(token)
        before = await self._fields(row)
        profile_before: UserFields | None = before
        changed: list[str] = []
        if fields.user_name != row.user_name:
            other = await self.store.user_by_name(team.id, fields.user_name)
            if other is not None and other.id != row.id:
                raise Conflict(f"userName {fields.user_name!r} is provisioned already.")
            changed.append("userName")
        if fields.external_id != row.external_id:
            changed.append("externalId")
        if fields.active != row.active:
            changed.append("active")
        if (fields.active is not False) != (row.active is not False):
            if fields.active is not False:
                await self._join(team, row.user_id, row.user_id[1:].split(":", 1)[0], fields, actor)
                await self.room_groups.rejoin(team, row)
                profile_before = None  # published afresh: the account may be new
            else:
                await self._leave(team, row.user_id, actor, deactivating=True)
        changed += await self._set_profile(row.user_id, fields, profile_before)
        if fields.email != before.email and await self.accounts.get(row.user_id):
            # Kept only for an account Clutto created (P3); another account's email is not Clutto's to keep.
            if fields.email is not None and not _EMAIL.fullmatch(fields.email):
                raise InvalidInput(f"{fields.email!r} is not an email address.")
            await self.accounts.set_email(row.user_id, fields.email)
            changed.append("emails")
        if not changed:
            return row
        row.user_name, row.external_id, row.active = fields.user_name, fields.external_id, fields.active
        row.version += 1
        row.updated_at = self.clock.now_ms()
        await self.store.save_user(row)
        await self.audit.record(
            team, actor, AuditAction.SCIM_USER_UPDATED, row.user_id, scim_id=row.id, changed=changed
        )
        return row

    async def _leave(self, team: Team, user_id: str, actor: str, *, deactivating: bool = False) -> None:
        """Out of the team; with ``scim.deactivate`` on and a deactivation (not a DELETE), the
        account too, if it is Clutto's to deactivate. An account that is not (made elsewhere,
        in another team) is kept: the removal from this team must happen whatever the answer."""
        member = await self.member_store.get(team.id, user_id)
        if member is None or member.membership not in membership.CURRENT:
            return
        if member.role == "owner":
            raise NotAllowed("The owner cannot be deactivated or deleted through SCIM; transfer the team first.")
        deactivate = deactivating and self.settings.deactivate
        if deactivate:
            try:
                await self.members.check_deactivatable(team, member)
            except NotAllowed as e:
                log.warning("scim.deactivate is on, but the account is kept: %s", e.message)
                deactivate = False
        await self.members.remove(team, user_id, actor=actor, deactivate=deactivate)
        try:
            await self.notices.tell(
                user_id, f"Your organisation's identity provider removed you from the team {team.name}."
            )
        except Exception:  # the removal stands whether or not the notice reaches them
            log.warning("Could not tell %s of their removal from team %s", user_id, team.id, exc_info=True)

    async def delete_user(self, team: Team, row: ScimUser, token: ScimToken) -> None:
        await self.check_writable(team)
        actor = self.actor(token)
        await self._leave(team, row.user_id, actor)
        await self.store.delete_user(row.id)
        await self.audit.record(team, actor, AuditAction.SCIM_USER_DELETED, row.user_id, scim_id=row.id)

    # --- groups (roles) ----------------------------------------------------------------

    async def group_members(self, team: Team, group: str) -> list[ScimUser]:
        role = GROUPS[group]
        return [
            row for row in await self.store.users_of(team.id) if await self.teams.role_of(team, row.user_id) == role
        ]

    async def set_group(self, team: Team, group: str, scim_ids: set[str], token: ScimToken) -> None:
        """Make the provisioned members of ``group`` exactly ``scim_ids``: who joins gets its role,
        who leaves the admins or guests group becomes a member. The owner's role never changes."""
        await self.check_writable(team)
        actor = self.actor(token)
        role = GROUPS[group]
        rows = await provisioned_users(self.store, team, scim_ids)
        changes: dict[str, str] = {}
        for row in rows.values():
            current = await self.teams.role_of(team, row.user_id)
            if current is None or current == "owner":
                continue
            if row.id in scim_ids and current != role:
                changes[row.user_id] = role
            elif row.id not in scim_ids and current == role and role != "member":
                changes[row.user_id] = "member"
        if changes:
            await self.members.change_roles(team, changes, actor=actor)
