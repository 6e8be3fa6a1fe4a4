"""Power levels a team's rooms should have, from its members' roles (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from clutto_bridge.db.member import INVITED, JOINED, Member
from clutto_bridge.matrix.spaces import BOT_LEVEL, power_levels

# The keys of m.room.power_levels the team's settings decide; others (notifications, ...)
# are left as the homeserver or clients set them.
MANAGED_KEYS = ("users", "users_default", "events_default", "state_default", "invite", "kick", "ban", "redact", "events")


def expected_power_levels(
    bot: str, owner: str, members: list[Member], levels: dict[str, int], *, space: bool,
    blocked: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``blocked`` members (no consent to the current policy, in block mode) are held one
    below the level members need to send, whatever their role, until they accept."""
    content = power_levels(bot, owner, levels, space=space)
    users = {bot: BOT_LEVEL}
    for member in members:
        if member.membership not in (INVITED, JOINED):
            continue
        level = levels[member.role]
        if member.user_id in blocked:
            level = min(level, levels["member"] - 1)
        if level != levels["member"]:
            users[member.user_id] = level
    content["users"] = users
    return content


def differences(current: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The managed keys whose current value differs from what the team's settings say."""
    return {key: current.get(key) for key in MANAGED_KEYS if current.get(key) != expected[key]}


def corrected(current: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The current content with every managed key put back."""
    return {**current, **{key: expected[key] for key in MANAGED_KEYS}}
