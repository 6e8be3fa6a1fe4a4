"""policy.encryption: what a new team room starts with, and what the gate refuses."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.encryption import (
    MAX_ROTATION_MS,
    MEGOLM,
    encrypts_existing_rooms,
    may_change_encryption,
    may_send_plaintext,
    room_encryption,
)
from clutto_bridge.policy.gate import RoomFacts

DAY = 86_400_000
BOT = "@clutto:example.org"
TEAM = RoomFacts("Acme", active=True, role="member", former_member=False, team_bot=False)


@pytest.mark.parametrize(
    ("retention_ms", "rotation"),
    [
        (90 * DAY, MAX_ROTATION_MS),  # at most a week
        (2 * DAY, 2 * DAY),  # never longer than the retention
    ],
)
def test_new_rooms_are_megolm_encrypted_with_a_bounded_rotation(retention_ms: int, rotation: int) -> None:
    for mode in ("default", "require"):
        assert room_encryption(mode, retention_ms) == {
            "algorithm": MEGOLM,
            "rotation_period_ms": rotation,
            "rotation_period_msgs": 100,
        }
    assert room_encryption("off", retention_ms) is None


def test_only_require_turns_encryption_on_in_existing_rooms() -> None:
    assert [encrypts_existing_rooms(m) for m in ("off", "default", "require")] == [False, False, True]


def test_only_the_bot_changes_a_team_rooms_encryption() -> None:
    refusal = may_change_encryption(TEAM, "@owner:example.org", BOT)
    assert refusal is not None and "rooms encrypt" in refusal.error
    assert may_change_encryption(TEAM, BOT, BOT) is None
    assert may_change_encryption(None, "@anyone:example.org", BOT) is None  # not a team room


@pytest.mark.parametrize(
    ("mode", "encrypted", "event_type", "sender", "refused"),
    [
        ("require", True, "m.room.message", "@m:example.org", True),
        ("require", True, "m.room.encrypted", "@m:example.org", False),
        ("require", False, "m.room.message", "@m:example.org", False),  # not encrypted yet
        ("default", True, "m.room.message", "@m:example.org", False),
        ("require", True, "m.room.message", BOT, False),
    ],
)
def test_plaintext_in_an_encrypted_team_room_is_refused_under_require(
    mode: str, encrypted: bool, event_type: str, sender: str, refused: bool
) -> None:
    assert (may_send_plaintext(TEAM, mode, encrypted, event_type, sender, BOT) is not None) is refused
