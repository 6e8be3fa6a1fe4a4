"""Before-the-write decisions (policy/gate): the same rules the after-the-fact enforcement applies."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.gate import (
    CONSENT_NOT_GIVEN,
    FORBIDDEN,
    RoomFacts,
    may_invite,
    may_join,
    may_send_message,
    may_send_widget,
    may_set_power_levels,
)

BOT = "@clutto:example.com"
GLOBAL_BOTS = ("@github:example.com",)


def facts(**changes) -> RoomFacts:
    base = {
        "team_name": "Acme",
        "active": True,
        "role": None,
        "former_member": False,
        "team_bot": False,
        "joined_here": False,
    }
    return RoomFacts(**{**base, **changes})


@pytest.mark.parametrize(
    "room, user, locked, refused_by",
    [
        (None, "@anyone:example.com", True, None),  # not a team room
        (facts(active=False), "@anyone:example.com", False, None),  # a team being purged
        (facts(), BOT, False, None),
        (facts(role="member"), "@ada:example.com", False, None),
        (facts(role="member", joined_here=True), "@ada:example.com", False, None),  # a name change, reset off
        (facts(role="member", joined_here=True), "@ada:example.com", True, "profile_change"),
        (facts(role="member"), "@ada:example.com", True, None),  # joining (from an invite) is no name change
        (facts(team_bot=True), "@helper:example.com", False, None),
        (facts(), "@github:example.com", False, None),
        (facts(), "@stranger:example.com", False, "outsider_join"),
        (facts(former_member=True), "@gone:example.com", False, "former_member_join"),
        # An identity provider's group room: the group's members, not the rest of the team.
        (facts(role="member", group_room=True, in_group=True), "@ada:example.com", False, None),
        (facts(role="admin", group_room=True), "@bo:example.com", False, "group_join"),
        (facts(role="member", group_room=True, joined_here=True), "@owner:example.com", False, None),  # stays
        (facts(group_room=True), BOT, False, None),
        (facts(group_room=True, team_bot=True), "@helper:example.com", False, None),
        (facts(group_room=True), "@stranger:example.com", False, "outsider_join"),
    ],
)
def test_who_may_join_a_team_room(room, user: str, locked: bool, refused_by: str | None) -> None:
    refusal = may_join(room, user, BOT, GLOBAL_BOTS, profile_locked=locked)
    assert (refusal.rule if refusal else None) == refused_by
    if refusal:
        assert refusal.errcode == FORBIDDEN and "Acme" in refusal.error


@pytest.mark.parametrize(
    "room, invitee, refused",
    [
        (None, "@anyone:example.com", False),
        (facts(role="member"), "@ada:example.com", False),  # the bridge recorded them before inviting
        (facts(team_bot=True), "@helper:example.com", False),
        (facts(), "@github:example.com", False),
        (facts(), BOT, False),
        (facts(), "@stranger:example.com", True),
        (facts(former_member=True), "@gone:example.com", True),
        (facts(active=False), "@stranger:example.com", False),
    ],
)
def test_who_may_be_invited_whoever_invites(room, invitee: str, refused: bool) -> None:
    refusal = may_invite(room, invitee, BOT, GLOBAL_BOTS)
    assert (refusal is not None) is refused
    if refusal:
        assert "!clutto invite" in refusal.error


@pytest.mark.parametrize(
    "room, consented, block, refused",
    [
        (facts(role="member"), False, True, True),
        (facts(role="member"), True, True, False),
        (facts(role="member"), False, False, False),  # remind mode never holds back
        (None, False, True, False),  # outside team rooms people write as before
        (facts(role=None, team_bot=True), False, True, False),  # bots have no consent to give
    ],
)
def test_consent_block_holds_back_messages_in_team_rooms_only(
    room, consented: bool, block: bool, refused: bool
) -> None:
    refusal = may_send_message(room, consented, block, "2026-11")
    assert (refusal is not None) is refused
    if refusal:
        assert refusal.errcode == CONSENT_NOT_GIVEN and "2026-11" in refusal.error


def test_widgets_under_an_allowed_prefix_and_removals_pass() -> None:
    prefixes = ["https://meet.example.com/"]
    assert may_send_widget({"url": "https://meet.example.com/r"}, prefixes) is None
    assert may_send_widget({}, prefixes) is None
    assert may_send_widget({"url": "https://meet.example.com.evil.net/"}, prefixes).rule == "widget"
    assert may_send_widget({"name": "no url"}, prefixes).rule == "widget"


def test_power_levels_refused_naming_the_keys_that_differ() -> None:
    assert may_set_power_levels({}) is None
    refusal = may_set_power_levels({"users": {}, "ban": 0})
    assert refusal.rule == "power_levels" and "ban, users" in refusal.error
