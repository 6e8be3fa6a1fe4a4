"""Build a team on Matrix: its space, its group rooms and the links between them.

Group rooms carry ``m.space.parent`` and a restricted join rule that admits members of
the space, so joining the space is what lets a user into the team's rooms. A room whose
members an identity provider's group decides is invite-only instead: only the bot invites
(``GATE_LEVEL``), so only the group's members come in.

Every space and group room the bridge creates carries its creation marker in the
``m.room.create`` content (``org.clutto.creation``, with ``org.clutto.team``): the creation
content can never change, so the marker says for the room's whole life that the bridge made
it and for which creation. Only rooms with a marker the bridge recorded as pending are ever
purged as orphans (``policy/orphans.py`` decides, ``domain/orphans.py`` acts).
"""

from __future__ import annotations

from typing import Any

from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError, MForbidden
from mautrix.types import EventType, RoomCreatePreset, RoomID, UserID

from clutto_bridge.policy.orphans import CREATION_KEY, TEAM_KEY

# Above the owner (100): Matrix lets a user change only the levels of users below them, so
# the bot must outrank the owner to demote one on a transfer or put back a hand-made change.
BOT_LEVEL = 1000
# What only the bot may do in a team space or room, whatever a member's role: invite, and
# change who may join or read. Who comes in is the team's membership, which the bridge
# keeps; at the bot's level the homeserver itself refuses a hand-made invite, a public join
# rule or world-readable history, also while the bridge is down (issue 23). No owner can
# lower these: Matrix refuses a change to a level above the sender's own.
GATE_LEVEL = BOT_LEVEL

SPACE_CHILD = EventType.find("m.space.child", EventType.Class.STATE)
SPACE_PARENT = EventType.find("m.space.parent", EventType.Class.STATE)


def creation_marker(team_id: str, marker: str) -> dict[str, str]:
    """The keys the bridge adds to the creation content of a team's space or room."""
    return {CREATION_KEY: marker, TEAM_KEY: team_id}


def power_levels(bot: str, owner: str, levels: dict[str, int], *, space: bool) -> dict[str, Any]:
    """Power levels of a team space or room: admins manage, members talk (not in the space),
    only the bot brings people in (``GATE_LEVEL``)."""
    admin = levels["admin"]
    return {
        "users": {bot: BOT_LEVEL, owner: levels["owner"]},
        "users_default": levels["member"],
        "events_default": admin if space else levels["member"],
        "state_default": admin,
        "invite": GATE_LEVEL,
        "kick": admin,
        "ban": admin,
        "redact": admin,
        "events": {
            "m.room.name": admin,
            "m.room.avatar": admin,
            "m.room.topic": admin,
            "m.room.power_levels": 100,
            "m.room.history_visibility": GATE_LEVEL,
            "m.room.join_rules": GATE_LEVEL,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
            "m.space.child": admin,
            "m.space.parent": 100,
        },
    }


def restricted_to_space(space_id: RoomID) -> dict[str, Any]:
    return {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space_id}]}


# A room of an identity provider's group: being in the space is not enough to join it.
INVITE_ONLY: dict[str, Any] = {"join_rule": "invite"}


def retention_state(retention_ms: int) -> dict[str, Any]:
    return {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": retention_ms}}


async def create_space(
    intent: IntentAPI,
    *,
    name: str,
    owner: UserID,
    levels: dict[str, int],
    room_version: str,
    retention_ms: int,
    marker: dict[str, str],
) -> RoomID:
    return await intent.create_room(
        name=name,
        preset=RoomCreatePreset.PRIVATE,
        room_version=room_version,
        creation_content={"type": "m.space", **marker},
        power_level_override=power_levels(intent.mxid, owner, levels, space=True),
        initial_state=[
            {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "shared"}},
            {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
            retention_state(retention_ms),
        ],
    )


async def create_group_room(
    intent: IntentAPI,
    *,
    space_id: RoomID,
    name: str,
    owner: UserID,
    levels: dict[str, int],
    room_version: str,
    server_name: str,
    retention_ms: int,
    marker: dict[str, str],
    encryption: dict[str, Any] | None = None,
    invite_only: bool = False,
) -> RoomID:
    """``encryption``: the room's ``m.room.encryption`` content, when it starts encrypted;
    ``invite_only``: a group room whose members are invited, not every member of the space."""
    join_rules = dict(INVITE_ONLY) if invite_only else restricted_to_space(space_id)
    return await intent.create_room(
        name=name,
        preset=RoomCreatePreset.PRIVATE,
        room_version=room_version,
        creation_content=dict(marker),
        power_level_override=power_levels(intent.mxid, owner, levels, space=False),
        initial_state=[
            {"type": str(SPACE_PARENT), "state_key": space_id, "content": {"via": [server_name], "canonical": True}},
            {"type": "m.room.join_rules", "state_key": "", "content": join_rules},
            {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "shared"}},
            {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}},
            retention_state(retention_ms),
            *encryption_state(encryption),
        ],
    )


def encryption_state(content: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The initial state that makes a new room encrypted (none for ``None``)."""
    return [{"type": "m.room.encryption", "state_key": "", "content": content}] if content else []


async def link_child(intent: IntentAPI, space_id: RoomID, room_id: RoomID, server_name: str) -> None:
    content: dict[str, Any] = {"via": [server_name], "suggested": True}
    await intent.send_state_event(space_id, SPACE_CHILD, content, state_key=room_id)


async def invite_once(intent: IntentAPI, room_id: RoomID, user_id: UserID) -> None:
    """Invite, treating "already in the room / already invited" as done."""
    try:
        await intent.invite_user(room_id, user_id)
    except MForbidden as e:
        if "already" not in str(e).lower() and "is in the room" not in str(e).lower():
            raise
    except MatrixRequestError as e:
        if e.http_status != 403:
            raise
