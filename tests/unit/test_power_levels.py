"""Who may bring people into a team room: only the bot, whatever the role (issue 23)."""

from __future__ import annotations

import pytest

from clutto_bridge.db.member import JOINED, Member
from clutto_bridge.teams.power import differences, expected_power_levels

BOT, OWNER, ADMIN = "@clutto:example.com", "@owner:example.com", "@admin:example.com"
LEVELS = {"owner": 100, "admin": 50, "member": 0, "guest": 0}


def _member(user_id: str, role: str) -> Member:
    return Member(team_id="t", user_id=user_id, role=role, membership=JOINED, created_by_bridge=False, added_at=0)


@pytest.mark.parametrize("space", [True, False])
def test_only_the_bot_may_invite_or_open_the_room(space: bool) -> None:
    levels = expected_power_levels(BOT, OWNER, [_member(OWNER, "owner"), _member(ADMIN, "admin")], LEVELS, space=space)
    highest_member = max(level for user, level in levels["users"].items() if user != BOT)
    assert highest_member == 100
    for gate in (levels["invite"], levels["events"]["m.room.join_rules"], levels["events"]["m.room.history_visibility"]):
        assert gate > highest_member
        assert gate <= levels["users"][BOT]


def test_a_room_with_the_old_invite_level_is_put_back() -> None:
    expected = expected_power_levels(BOT, OWNER, [], LEVELS, space=False)
    old = {**expected, "invite": 50, "events": {**expected["events"], "m.room.join_rules": 100}}
    assert set(differences(old, expected)) == {"invite", "events"}
