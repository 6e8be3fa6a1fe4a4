"""mautrix's appservice state store, with members' profiles kept in memory only.

mautrix caches every member's display name and avatar (``mx_user_profile``) in plaintext.
The bridge keeps only memberships in that table (who is in a room). Display names and
avatars stay in this process's memory, where the profile enforcement and the answers
before the write compare them; after a restart they are learned again from the events
that carry them. Personal data the bridge need not keep is not written, not even
encrypted (P12).
"""

from __future__ import annotations

from typing import Any, cast

from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.crypto import StateStore as CryptoStateStore
from mautrix.types import ContentURI, Member, Membership, MemberStateEventContent, RoomID, UserID


# mautrix types is_encrypted as bool | None in one base and bool in the other.
class MembershipStateStore(PgASStateStore, CryptoStateStore):  # type: ignore[misc]
    """The appservice's state store, which the bot's OlmMachine also reads (as mautrix's
    PgCryptoStateStore does, the asyncpg store implements the crypto module's three methods)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._profiles: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def seen_profile(self, room_id: str, user_id: str) -> tuple[str | None, str | None] | None:
        """The display name and avatar this room last showed for the user, if seen since start."""
        return self._profiles.get((room_id, user_id))

    def _remember(self, room_id: RoomID, user_id: UserID, member: Member | MemberStateEventContent) -> None:
        if member.membership in (Membership.JOIN, Membership.INVITE):
            self._profiles[(room_id, user_id)] = (member.displayname, member.avatar_url)
        else:
            self._profiles.pop((room_id, user_id), None)

    async def set_member(self, room_id: RoomID, user_id: UserID, member: Member | MemberStateEventContent) -> None:
        await super().set_member(room_id, user_id, Member(membership=member.membership))
        self._remember(room_id, user_id, member)

    async def set_members(
        self,
        room_id: RoomID,
        members: dict[UserID, Member | MemberStateEventContent],
        only_membership: Membership | None = None,
    ) -> None:
        bare: dict[UserID, Member | MemberStateEventContent] = {
            user_id: Member(membership=m.membership) for user_id, m in members.items()
        }
        await super().set_members(room_id, bare, only_membership)
        for user_id, member in members.items():
            self._remember(room_id, user_id, member)

    async def get_member(self, room_id: RoomID, user_id: UserID) -> Member | None:
        member = await super().get_member(room_id, user_id)
        seen = self._profiles.get((room_id, user_id))
        if member is not None and seen is not None:
            # mautrix's Member holds None for a missing name or avatar, whatever its annotation says.
            member.displayname, member.avatar_url = cast(tuple[str, ContentURI], seen)
        return member
