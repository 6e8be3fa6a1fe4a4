"""Members' profiles (P2): kept in our database, published to teammates, enforced in team rooms.

Publishing: where the homeserver supports custom profile fields (MSC4133, detected at
start-up) the allowed text fields are written to the member's Matrix profile as
``io.clutto.first_name`` and so on, and any other custom field is deleted. Otherwise they
go into an ``io.clutto.profile`` state event of each team space, with the state key
``_`` + user ID (a key starting with ``@`` could only be written by that user).

Enforcement: the display name and avatar a member shows must be the ones their profile
gives. ``reset`` rewrites the member's global profile through the admin-only profile API;
Synapse then re-sends their membership in every room they are in, which also replaces a
per-room name. We never write a member's room state ourselves (only they can).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from clutto_bridge.clock import Clock
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.profile import ProfileStore
from clutto_bridge.db.team import Team
from clutto_bridge.domain.audit import AuditLog
from clutto_bridge.domain.errors import InvalidInput, NotAllowed, TeamError
from clutto_bridge.domain.notices import NoticeService
from clutto_bridge.domain.sent_files import FileRemoval, SentFile, read_sent_file, remove_sent_file
from clutto_bridge.domain.service import TeamService
from clutto_bridge.matrix.admin import AdminUnavailable, SynapseAdmin
from clutto_bridge.matrix.errors import MatrixRequestError
from clutto_bridge.matrix.homeserver import Homeserver
from clutto_bridge.policy import profile as policy
from clutto_bridge.policy.audit_actions import AuditAction

log = logging.getLogger("clutto.profiles")

PROFILE_STATE = "io.clutto.profile"
# A repeated warning about the same difference is not sent again within this time: one
# change of a global name arrives as one membership event per room.
WARN_QUIET_S = 60.0
# How long a reset may take to show in the room before it is written again, and how often.
RESET_CONFIRM_S = 5.0
RESET_ATTEMPTS = 3
# For this long after the bridge writes a member's profile, the homeserver may re-send their
# memberships with it; the before-the-write check (teams/gate) lets those through.
OWN_WRITE_WINDOW_S = 30.0


@dataclass(kw_only=True, eq=False, repr=False)
class ProfileService:
    store: ProfileStore
    members: MemberStore
    teams: TeamService
    homeserver: Homeserver
    admin: SynapseAdmin
    notices: NoticeService
    audit: AuditLog
    rules: policy.ProfileRules
    domain: str
    clock: Clock
    custom_fields: bool = field(init=False, default=False)  # set by detect()
    _warned: dict[str, tuple[str, float]] = field(init=False, default_factory=dict)
    # user -> (deadline, name, avatar)
    _own_writes: dict[str, tuple[float, str | None, str | None]] = field(init=False, default_factory=dict)

    async def detect(self) -> str:
        """Choose the publishing mechanism from the homeserver's capabilities."""
        caps = await self.homeserver.capabilities()
        fields = caps.get("m.profile_fields") or caps.get("uk.tcpip.msc4133.profile_fields") or {}
        self.custom_fields = bool(fields.get("enabled"))
        return "custom profile fields (MSC4133)" if self.custom_fields else f"{PROFILE_STATE} state in team spaces"

    # --- reading and writing ---------------------------------------------------------------

    async def get(self, user_id: str) -> dict[str, str | None]:
        stored = await self.store.get(user_id)
        return {f: stored.get(f) for f in policy.FIELDS}

    async def shown(self, user_id: str, viewer: str | None) -> dict[str, str | None]:
        """A profile as ``viewer`` may see it: their own, a teammate's, or (operator) any."""
        if viewer is not None and viewer != user_id and not await self.members.share_a_team(user_id, viewer):
            raise NotAllowed(f"You can see the profile of people in your teams only; {user_id} is in none of them.")
        profile = await self.get(user_id)
        if viewer is None:  # teammates see it on Matrix anyway; the operator reading any profile is recorded
            await self.audit.record(None, None, AuditAction.MEMBER_DATA_READ, user_id, part="profile")
        return {f: profile[f] for f in self.rules.allowed}

    async def update(self, user_id: str, changes: Mapping[str, object], *, actor: str | None) -> dict[str, str | None]:
        """Set (value) or clear (None) fields; every change is checked before any is written."""
        if actor is not None and actor != user_id:
            raise NotAllowed("Members change only their own profile.")
        if not changes:
            raise InvalidInput(f"Name a field to change: {', '.join(self.rules.allowed)}.")
        checked: dict[str, str | None] = {}
        for raw_field, value in changes.items():
            field = self._field(raw_field)
            if value is None:
                if field in self.rules.required:
                    raise InvalidInput(f"The {field} is required by the policy and cannot be removed.")
                checked[field] = None
            elif field == "photo":
                checked[field] = await self._photo(value)
            else:
                checked[field] = self._text(field, value)
        profile = await self.get(user_id)
        profile.update(checked)
        await self.store.save(user_id, profile, self.clock.now_ms())
        log.info("%s changed profile fields %s", user_id, ", ".join(sorted(checked)))
        await self.publish(user_id, profile)
        if self.rules.enforce != "off" and self._local(user_id):
            try:
                await self._apply(user_id, profile)
            except AdminUnavailable as e:
                log.warning("Saved the profile of %s but cannot apply its name and photo: %s", user_id, e)
        return {f: profile[f] for f in self.rules.allowed}

    def _field(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise InvalidInput("A profile field name must be text.")
        try:
            return policy.check_field(self.rules, raw)
        except policy.ProfileError as e:
            raise InvalidInput(str(e)) from None

    def _text(self, field: str, value: object) -> str:
        try:
            return policy.check_text(self.rules, field, value)
        except policy.ProfileError as e:
            raise InvalidInput(str(e)) from None

    async def upload_photo(self, user_id: str, data: bytes, mime_type: str) -> dict[str, str | None]:
        """A photo uploaded through the portal: stored on the homeserver, then checked like any
        photo (type, size and content). A refused upload is deleted again, so it does not stay."""
        if "photo" not in self.rules.allowed:
            raise InvalidInput("The policy does not allow a profile photo.")
        if not data:
            raise InvalidInput("Choose an image file to upload.")
        if len(data) > self.rules.photo_max_bytes:
            raise InvalidInput(f"The photo is larger than {self.rules.photo_max_bytes // 1024} KiB.")
        if mime_type not in self.rules.photo_types:
            raise InvalidInput(f"A photo must be one of {', '.join(self.rules.photo_types)}, not {mime_type}.")
        mxc = await self.homeserver.upload(data, name="profile-photo", mime_type=mime_type)
        try:
            return await self.update(user_id, {"photo": mxc}, actor=user_id)
        except TeamError:
            await self.admin.delete_media(mxc)
            raise

    async def photo_from_encrypted_image(
        self, user_id: str, room_id: str, event_id: str, file: SentFile, mime_type: str
    ) -> FileRemoval:
        """An image sent to the bot as an encrypted attachment becomes the photo. An avatar is a
        plain mxc URI (profiles are public), so its decrypted bytes are uploaded and checked like
        a portal upload; then its message is redacted and its encrypted upload deleted."""
        data = await read_sent_file(self.homeserver, file, "image", self.rules.photo_max_bytes)
        await self.upload_photo(user_id, data, mime_type)
        return await remove_sent_file(
            self.homeserver, self.admin, room_id, event_id, file, "Profile photo: kept as the avatar"
        )

    async def _photo(self, value: object) -> str:
        try:
            mxc = policy.check_photo_uri(value)
            info = await self.admin.media_info(mxc)
            if info is None:
                raise policy.ProfileError(f"{mxc} is not a file uploaded to this homeserver.")
            policy.check_photo_media(self.rules, *info)
            # The declared type is only a claim: the content decides.
            try:
                data = await self.homeserver.download(mxc)
            except MatrixRequestError as e:
                raise policy.ProfileError(f"I could not fetch {mxc} to check it (error {e.http_status}).") from None
            width, height = policy.check_photo_content(self.rules, info[0], data)
            log.debug("Photo %s is a %dx%d image", mxc, width, height)
        except policy.ProfileError as e:
            raise InvalidInput(str(e)) from None
        except AdminUnavailable:
            raise NotAllowed("Checking a photo needs the homeserver admin API; ask the operator.") from None
        return mxc

    # --- publishing ---------------------------------------------------------------------------

    def _local(self, user_id: str) -> bool:
        """Only accounts on our homeserver have a profile the admin API can write."""
        return user_id.endswith(f":{self.domain}")

    async def drop_disallowed(self) -> int:
        """Forget stored fields the policy no longer allows (the operator narrowed it)."""
        dropped = 0
        for name in policy.FIELDS:
            if name not in self.rules.allowed:
                count = await self.store.clear_field(name)
                if count:
                    log.info("Deleted %d stored %s value(s): the policy no longer allows the field", count, name)
                    dropped += count
        return dropped

    async def publish(self, user_id: str, profile: dict[str, str | None] | None = None) -> None:
        """Show the allowed text fields to teammates; take down what the policy does not allow."""
        profile = profile or await self.get(user_id)
        visible = {f: profile[f] for f in self.rules.allowed if f in policy.TEXT_FIELDS and profile[f]}
        if self.custom_fields and self._local(user_id):
            try:
                current = await self.admin.profile(user_id)
                for name in policy.unpublished(current, self.rules):
                    await self.admin.set_profile_field(user_id, name, None)
                    log.info("Deleted custom profile field %s of %s (not allowed by the policy)", name, user_id)
                for field in (f for f in self.rules.allowed if f in policy.TEXT_FIELDS):  # the rest went above
                    key = policy.CUSTOM_FIELD_PREFIX + field
                    if current.get(key) != visible.get(field) and (field in visible or key in current):
                        await self.admin.set_profile_field(user_id, key, visible.get(field))
            except AdminUnavailable as e:
                log.warning("Cannot publish the profile of %s: %s", user_id, e)
            return
        for team in await self.teams.of_user(user_id):
            if await self.teams.role_of(team, user_id) is not None:
                await self.homeserver.set_state(team.space, PROFILE_STATE, visible, state_key=f"_{user_id}")

    async def unpublish(self, team: Team, user_id: str) -> None:
        """Someone left or was removed: their profile is no longer shown in that team's space."""
        if self.custom_fields:
            return  # the fields live in their own global profile, not in the team
        current = await self.homeserver.state(team.space, PROFILE_STATE, f"_{user_id}")
        if current:  # None: never published there
            await self.homeserver.set_state(team.space, PROFILE_STATE, {}, state_key=f"_{user_id}")

    # --- enforcement ---------------------------------------------------------------------------

    async def member_event(
        self, team: Team, room_id: str, user_id: str, displayname: str | None, avatar_url: str | None
    ) -> None:
        """A team member joined or changed their name/avatar in a team room: apply the policy."""
        if self.rules.enforce == "off" or await self.teams.role_of(team, user_id) is None:
            return
        profile = await self.get(user_id)
        found = policy.deviation(self.rules, profile, displayname, avatar_url)
        if not found:
            return
        if self.rules.enforce == "reset" and not self._local(user_id):
            log.info("%s is on another homeserver; its profile can only be warned about", user_id)
        elif self.rules.enforce == "reset" and await self._still_deviates(room_id, user_id, profile):
            try:
                await self._apply(user_id, profile)
            except AdminUnavailable as e:
                log.warning("Cannot reset the profile of %s (%s); warning instead", user_id, e)
            else:
                await self.audit.record(
                    team, None, AuditAction.PROFILE_RESET, user_id, room_id=room_id, reason=found.describe()
                )
                await self._tell(
                    user_id,
                    f"In **{team.name}**, {found.describe()}. I put it back, as the team's policy says. "
                    "Change your profile with `profile set FIELD VALUE`.",
                )
                await self._confirm_reset(room_id, user_id, profile)
                return
        if self.rules.enforce == "warn" or not self._local(user_id):
            await self._tell(
                user_id,
                f"In **{team.name}**, {found.describe()}. Please change it back, or change your "
                "profile with `profile set FIELD VALUE`.",
            )

    async def _confirm_reset(self, room_id: str, user_id: str, profile: dict[str, str | None]) -> None:
        """Write again if the room does not show the reset in time.

        Synapse re-sends memberships in a background task and cancels the running one when
        the profile changes again; when our write lands while the member's own change is
        still propagating, Synapse (1.163) can lose both tasks, and the room keeps the name.
        """
        for _attempt in range(RESET_ATTEMPTS):
            deadline = time.monotonic() + RESET_CONFIRM_S
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                if not await self._still_deviates(room_id, user_id, profile):
                    return
            log.info("The reset of %s in %s did not show yet; writing again", user_id, room_id)
            await self._apply(user_id, profile)
        log.warning("Could not reset the profile of %s in %s", user_id, room_id)

    async def _still_deviates(self, room_id: str, user_id: str, profile: dict[str, str | None]) -> bool:
        """Events arrive after the fact; an earlier reset may already have fixed this room."""
        state = await self.homeserver.state(room_id, "m.room.member", user_id)
        if state is None:
            return True
        return bool(policy.deviation(self.rules, profile, state.get("displayname"), state.get("avatar_url")))

    def writing(self, user_id: str) -> tuple[str | None, str | None] | None:
        """The (display name, avatar) the bridge is writing for this member right now, if it is;
        the name is None when the profile gives none yet."""
        write = self._own_writes.get(user_id)
        return write[1:] if write is not None and time.monotonic() < write[0] else None

    async def _apply(self, user_id: str, profile: dict[str, str | None]) -> None:
        """Write the policy's display name and avatar to the member's global profile."""
        now = time.monotonic()
        self._own_writes = {u: w for u, w in self._own_writes.items() if w[0] > now}
        self._own_writes[user_id] = (
            now + OWN_WRITE_WINDOW_S,
            policy.display_name(self.rules, profile),
            policy.avatar(self.rules, profile),
        )
        # Each write re-sends the membership in every room the member is in, with the
        # global name and avatar, so it also replaces per-room ones; hence written even
        # when the global value is already right.
        name = policy.display_name(self.rules, profile)
        wanted = policy.avatar(self.rules, profile)
        current = await self.admin.profile(user_id)
        if (current.get("avatar_url") or None) != (wanted or None) or name is None:
            await self.admin.set_profile_field(user_id, "avatar_url", wanted)
        if name is not None:
            await self.admin.set_profile_field(user_id, "displayname", name)

    async def _tell(self, user_id: str, text: str) -> None:
        last = self._warned.get(user_id)
        now = time.monotonic()
        if last and last[0] == text and now - last[1] < WARN_QUIET_S:
            return
        self._warned[user_id] = (text, now)
        await self.notices.tell(user_id, text)

    async def missing(self, user_id: str) -> list[str]:
        return policy.missing_required(self.rules, await self.get(user_id))
