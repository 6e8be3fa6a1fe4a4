"""mautrix's appservice state store, minus the members' profiles.

mautrix caches every member's display name and avatar (``mx_user_profile``) in plaintext.
The bridge needs only memberships from it (who is in a room), so display names and avatars
are dropped before the cache is written: personal data the bridge does not need is not kept,
not even encrypted (P12).
"""

from __future__ import annotations

from mautrix.appservice.state_store.asyncpg import PgASStateStore
from mautrix.types import Member, MemberStateEventContent, Membership, RoomID, UserID


class MembershipStateStore(PgASStateStore):
    async def set_member(self, room_id: RoomID, user_id: UserID, member: Member | MemberStateEventContent) -> None:
        await super().set_member(room_id, user_id, Member(membership=member.membership))

    async def set_members(
        self,
        room_id: RoomID,
        members: dict[UserID, Member | MemberStateEventContent],
        only_membership: Membership | None = None,
    ) -> None:
        bare = {user_id: Member(membership=m.membership) for user_id, m in members.items()}
        await super().set_members(room_id, bare, only_membership)
