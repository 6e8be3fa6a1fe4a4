"""The bridge's answers to the homeserver's questions before it stores something (issue 15).

Each answer comes from the bridge's database (one indexed query for the room and the
user; a member's consent once, then remembered) and the pure rules in ``policy/gate``,
which the after-the-fact enforcement shares. Nothing here calls the homeserver: it is
waiting for the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from clutto_bridge.config import Settings
from clutto_bridge.db.gate import GateRow, GateStore
from clutto_bridge.db.integrations import IntegrationStore
from clutto_bridge.db.member import MemberStore
from clutto_bridge.db.team import TeamState
from clutto_bridge.domain.consent import ConsentService
from clutto_bridge.domain.integrations import WIDGET
from clutto_bridge.domain.power import differences, expected_power_levels
from clutto_bridge.domain.profiles import ProfileService
from clutto_bridge.policy import encryption, gate as policy
from clutto_bridge.policy.gate import Refusal, RoomFacts

log = logging.getLogger("clutto.gate")


@dataclass(kw_only=True, eq=False, repr=False)
class Gatekeeper:
    store: GateStore
    members: MemberStore
    integrations: IntegrationStore
    consent: ConsentService
    profiles: ProfileService
    settings: Settings
    # What a room last showed as a member's name and avatar (kept in memory only, P12).
    seen_profile: Callable[[str, str], tuple[str | None, str | None] | None] = lambda room_id, user_id: None
    # Whether a room has m.room.encryption (the bot's state store), for policy.encryption: require.
    is_encrypted: Callable[[str], Awaitable[bool]] | None = None
    bot: str = field(init=False)
    # Members seen to have accepted the current version. Consent is not withdrawn, and a
    # new version means a new bridge configuration (a restart), so a yes stays a yes.
    _consented: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.bot = self.settings.bot_mxid

    async def join(self, user_id: str, room_id: str) -> Refusal | None:
        row = await self.store.facts(room_id, user_id)
        locked = self.settings.profile.enforce == "reset" and not self._own_write_pending(row, room_id, user_id)
        refusal = policy.may_join(
            _facts(row), user_id, self.bot, self.settings.integrations.bots, profile_locked=locked
        )
        return self._log(refusal, user_id, room_id)

    def _own_write_pending(self, row: GateRow | None, room_id: str, user_id: str) -> bool:
        """The bridge is writing this member's name and avatar, and this room does not show them
        yet (or this process has not seen what it shows since it started): the homeserver is
        re-sending the membership with them, which passes."""
        written = self.profiles.writing(user_id)
        if written is None or row is None:
            return False
        name, avatar = written
        shown = self.seen_profile(room_id, user_id)
        if shown is None:
            return True
        return (name is not None and shown[0] != name) or (shown[1] or None) != (avatar or None)

    async def invite(self, inviter: str, invitee: str, room_id: str) -> Refusal | None:
        row = await self.store.facts(room_id, invitee)
        refusal = policy.may_invite(_facts(row), invitee, self.bot, self.settings.integrations.bots)
        return self._log(refusal, inviter, room_id)

    async def event(self, event: dict) -> Refusal | None:
        """A message or a state event (not a membership: Synapse does not ask about those here)."""
        sender, room_id = event.get("sender"), event.get("room_id")
        if not isinstance(sender, str) or not isinstance(room_id, str) or sender == self.bot:
            return None
        is_encrypted = self.is_encrypted if self.settings.policy.encryption == "require" else None
        requires_encryption = is_encrypted is not None
        if "state_key" not in event and self.settings.consent.mode != "block" and not requires_encryption:
            return None  # no rule holds back a message: answered without reading anything
        content = event.get("content")
        if not isinstance(content, dict):
            content = {}
        row = await self.store.facts(room_id, sender)
        facts = _facts(row)
        if row is None or facts is None or not facts.active:
            return None
        event_type = str(event.get("type", ""))
        if "state_key" in event:
            refusal = await self._state(row, room_id, event_type, content)
            if event_type == encryption.ENCRYPTION_EVENT:
                refusal = encryption.may_change_encryption(facts, sender, self.bot)
        else:
            refusal = await self._message(facts, sender)
            if refusal is None and is_encrypted is not None and event_type == "m.room.message":
                refusal = encryption.may_send_plaintext(
                    facts, "require", await is_encrypted(room_id), event_type, sender, self.bot
                )
        return self._log(refusal, sender, room_id)

    async def _state(self, row: GateRow, room_id: str, event_type: str, content: dict) -> Refusal | None:
        if policy.is_widget(event_type):
            team_prefixes = [v for kind, v in await self.integrations.of_team(row.team_id) if kind == WIDGET]
            return policy.may_send_widget(content, [*self.settings.integrations.widget_url_prefixes, *team_prefixes])
        if event_type == policy.POWER_LEVELS:
            members = await self.members.of_team(row.team_id)
            expected = expected_power_levels(
                self.bot,
                row.owner,
                members,
                self.settings.bridge.power_levels,
                space=room_id == row.space_id,
                blocked=await self.consent.blocked(members),
            )
            return policy.may_set_power_levels(differences(content, expected))
        if event_type == policy.PROFILE_STATE:
            return policy.profile_state_refusal()
        return None

    async def _message(self, facts: RoomFacts, sender: str) -> Refusal | None:
        block = self.settings.consent.mode == "block"
        if not block or facts.role is None:
            return None
        consented = sender in self._consented or await self.consent.has_consented(sender)
        if consented:
            self._consented.add(sender)
        return policy.may_send_message(facts, consented, block, self.settings.consent.version)

    def _log(self, refusal: Refusal | None, actor: str, room_id: str) -> Refusal | None:
        if refusal is not None:
            log.info("Refused before the write (%s): %s in %s", refusal.rule, actor, room_id)
        return refusal


def _facts(row: GateRow | None) -> RoomFacts | None:
    if row is None:
        return None
    return RoomFacts(
        team_name=row.team_name,
        active=row.state == TeamState.ACTIVE,
        role=row.current_role,
        former_member=row.membership is not None and row.current_role is None,
        team_bot=row.team_bot,
        joined_here=row.room_membership == "join",
        group_room=row.group_room,
        in_group=row.in_group,
    )
