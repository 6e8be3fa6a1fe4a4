"""Who may bring people into a team room: only the bot, whatever the role (issue 23)."""

from __future__ import annotations

import pytest

from clutto_bridge.db.member import JOINED, Member
from clutto_bridge.domain.power import (
    creators_with_power,
    differences,
    expected_power_levels,
    level_of,
    may_change_levels,
    within_reach,
)

BOT, OWNER, ADMIN = "@clutto:example.com", "@owner:example.com", "@admin:example.com"
LEVELS = {"owner": 100, "admin": 50, "member": 0, "guest": 0}


def _member(user_id: str, role: str) -> Member:
    return Member(team_id="t", user_id=user_id, role=role, membership=JOINED, created_by_bridge=False, added_at=0)


@pytest.mark.parametrize("space", [True, False])
def test_only_the_bot_may_invite_or_open_the_room(space: bool) -> None:
    levels = expected_power_levels(BOT, OWNER, [_member(OWNER, "owner"), _member(ADMIN, "admin")], LEVELS, space=space)
    highest_member = max(level for user, level in levels["users"].items() if user != BOT)
    assert highest_member == 100
    for gate in (
        levels["invite"],
        levels["events"]["m.room.join_rules"],
        levels["events"]["m.room.history_visibility"],
    ):
        assert gate > highest_member
        assert gate <= levels["users"][BOT]


def test_a_room_with_the_old_invite_level_is_put_back() -> None:
    expected = expected_power_levels(BOT, OWNER, [], LEVELS, space=False)
    old = {**expected, "invite": 50, "events": {**expected["events"], "m.room.join_rules": 100}}
    assert set(differences(old, expected)) == {"invite", "events"}


def _room_added_by_owner() -> dict:
    """A version 12 room the owner created in Element, after the bot was made its admin."""
    return {
        "users": {BOT: 100, "@old-mod:example.com": 100},
        "users_default": 0,
        "events_default": 0,
        "state_default": 50,
        "invite": 0,
        "kick": 50,
        "ban": 50,
        "redact": 50,
        "events": {"m.room.power_levels": 100, "m.room.tombstone": 150},
    }


def test_levels_in_a_room_a_member_added_stay_within_the_bots_reach() -> None:
    members = [_member(OWNER, "owner"), _member(ADMIN, "admin")]
    expected = expected_power_levels(BOT, OWNER, members, LEVELS, space=False)
    current = _room_added_by_owner()
    reach = within_reach(current, expected, bot=BOT, bot_level=100, creators=frozenset({OWNER}))
    assert OWNER not in reach["users"]  # a creator of a version 12 room is never listed
    assert reach["users"][BOT] == 100 and reach["users"]["@old-mod:example.com"] == 100  # at the bot's level: kept
    assert reach["users"][ADMIN] == 50
    assert reach["invite"] == 100 and reach["events"]["m.room.join_rules"] == 100  # capped at the bot's level
    assert reach["events"]["m.room.tombstone"] == 150  # above the bot: left as it is
    assert max(v for v in reach["users"].values()) <= 100
    assert differences(current | reach, reach) == {}


def test_in_the_rooms_the_bot_created_its_reach_is_the_team_levels() -> None:
    members = [_member(OWNER, "owner"), _member(ADMIN, "admin")]
    expected = expected_power_levels(BOT, OWNER, members, LEVELS, space=False)
    assert (
        within_reach(expected, expected, bot=BOT, bot_level=level_of(expected, BOT), creators=frozenset()) == expected
    )


@pytest.mark.parametrize(
    "version, creators",
    [
        ("10", frozenset()),
        ("11", frozenset()),
        ("12", frozenset({OWNER, ADMIN})),
    ],
)
def test_only_version_12_creators_stand_above_the_levels(version: str, creators: frozenset[str]) -> None:
    create = {"sender": OWNER, "content": {"room_version": version, "additional_creators": [ADMIN]}}
    assert creators_with_power(create) == creators


def test_the_bot_may_change_levels_only_at_the_level_the_room_asks() -> None:
    assert may_change_levels(_room_added_by_owner(), BOT)
    assert not may_change_levels({"users": {}, "state_default": 50}, BOT)
