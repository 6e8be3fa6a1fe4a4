"""Power levels a team's rooms should have, from its members' roles (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from clutto_bridge.db.member import INVITED, JOINED, Member
from clutto_bridge.matrix.spaces import BOT_LEVEL, power_levels

# The keys of m.room.power_levels the team's settings decide; others (notifications, ...)
# are left as the homeserver or clients set them.
MANAGED_KEYS = (
    "users",
    "users_default",
    "events_default",
    "state_default",
    "invite",
    "kick",
    "ban",
    "redact",
    "events",
)


def expected_power_levels(
    bot: str,
    owner: str,
    members: list[Member],
    levels: dict[str, int],
    *,
    space: bool,
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


# Room versions in which the creators hold a power above every level (MSC4289): they are never
# listed in ``users`` and nobody can lower them.
_CREATOR_POWER_VERSIONS = ("12",)


def creators_with_power(create_event: dict[str, Any]) -> frozenset[str]:
    """The users whose power no power-levels event can change: the creators of a room of
    version 12 or later (its ``m.room.create`` event: sender and ``additional_creators``)."""
    content = create_event.get("content", {})
    version = str(content.get("room_version", "1"))
    if version not in _CREATOR_POWER_VERSIONS and not version.startswith("org.matrix.hydra"):
        return frozenset()
    return frozenset([create_event.get("sender", ""), *content.get("additional_creators", [])]) - {""}


def level_of(content: dict[str, Any], user: str) -> int:
    """A user's power level in a room as its power-levels content gives it."""
    return int(content.get("users", {}).get(user, content.get("users_default", 0)))


def may_change_levels(content: dict[str, Any], user: str) -> bool:
    """Whether ``user`` may send the room's power levels (and so apply the team's)."""
    needed = content.get("events", {}).get("m.room.power_levels", content.get("state_default", 50))
    return level_of(content, user) >= int(needed)


def within_reach(
    current: dict[str, Any],
    expected: dict[str, Any],
    *,
    bot: str,
    bot_level: float,
    creators: frozenset[str],
) -> dict[str, Any]:
    """The team's levels as far as the bot can set them in a room it did not create (a room a
    member added to the space): no level above the bot's own, nothing changed that is above it
    already (Matrix refuses both), a user at the bot's level or above kept as they are, and
    the room's creators left out (in version 12 rooms they stand above every level). In the
    rooms the bot created it stands above everyone, and this is ``expected`` unchanged."""
    reach = dict(expected)
    for key in MANAGED_KEYS:
        if key in ("users", "events"):
            continue
        old = current.get(key)
        reach[key] = old if old is not None and old > bot_level else min(expected[key], bot_level)
    events: dict[str, Any] = {}
    old_events = current.get("events", {})
    for name in {*old_events, *expected["events"]}:
        old = old_events.get(name)
        if old is not None and old > bot_level:
            events[name] = old
        elif name in expected["events"]:
            events[name] = min(expected["events"][name], bot_level)
    reach["events"] = events
    users: dict[str, Any] = {}
    old_users = current.get("users", {})
    for user in {*old_users, *expected["users"]}:
        old = old_users.get(user)
        if user in creators:
            continue
        if user != bot and old is not None and old >= bot_level:
            users[user] = old
        elif user in expected["users"]:
            users[user] = min(expected["users"][user], bot_level)
    reach["users"] = users
    return reach
