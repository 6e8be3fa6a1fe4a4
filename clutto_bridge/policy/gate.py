"""Enforcement before the write: whether the homeserver may store a join, an invite, a state
event or a message (issue 15; P1, P2, P8, P9).

The homeserver asks (through synapse-http-antispam) before it stores; the bridge answers
with the same rules it applies after the fact when the module is absent: outsiders out of
team rooms (``integrations.outsider_allowed``), widgets under allowed prefixes
(``integrations.widget_allowed``), power levels from roles (``teams/power``), consent block
mode (``consent``). Pure: the facts arrive as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

from clutto_bridge.policy.integrations import WIDGET_EVENT_TYPES, outsider_allowed, widget_allowed

# Matrix error codes a client understands (and Synapse's ``Codes`` knows: the module turns
# any other code into M_FORBIDDEN).
FORBIDDEN = "M_FORBIDDEN"
CONSENT_NOT_GIVEN = "M_CONSENT_NOT_GIVEN"

PROFILE_STATE = "io.clutto.profile"
POWER_LEVELS = "m.room.power_levels"


@dataclass(frozen=True)
class Refusal:
    """Why the homeserver must not store it: a Matrix error code and a sentence for the person."""

    errcode: str
    error: str
    rule: str  # which rule refused, for the log and the metrics (never shown with ids)


@dataclass(frozen=True)
class RoomFacts:
    """What the bridge knows of one team room and one user, read in one query."""

    team_name: str
    active: bool
    role: str | None  # the user's role while invited or joined; None otherwise
    former_member: bool  # the user was in the team (left, declined or removed)
    team_bot: bool  # on the team's own bot allowlist
    joined_here: bool = False  # already joined to this room: a "join" now changes their name or avatar
    group_room: bool = False  # the room of an identity provider's group: its members are the group's
    in_group: bool = False  # the user is in that group


def may_join(
    facts: RoomFacts | None,
    user_id: str,
    bridge_bot: str,
    global_bots: tuple[str, ...],
    *,
    profile_locked: bool = False,
) -> Refusal | None:
    """Team rooms and the space: current members, the bridge's bot and allowed integration bots.

    Synapse asks the same question when a joined member changes their name or avatar (a new
    membership event). With ``enforce: reset`` a member's name and photo in team rooms are
    the ones their profile gives, which only the bridge writes: ``profile_locked`` says so
    (reset mode, and not the bridge's own write), and such a change is refused.

    The room of an identity provider's group (SCIM) is the group's: a member of the team who is
    not in the group does not come in (its join rule is ``invite`` too; this holds for an invite
    left over from before the provider took the room over). Someone already in it stays.
    """
    if not _enforced(facts) or user_id == bridge_bot:
        return None
    if facts.role is not None:
        if facts.joined_here and profile_locked:
            return Refusal(
                FORBIDDEN,
                f"In the rooms of the team {facts.team_name} your name and photo come from "
                "your profile. Change them with `!clutto profile set FIELD VALUE` (or send the Clutto bot a "
                "photo).",
                "profile_change",
            )
        if facts.group_room and not facts.in_group and not facts.joined_here:
            return Refusal(
                FORBIDDEN,
                f"This room of the team {facts.team_name} belongs to a group your organisation's identity "
                "provider manages, and only the group's members may join. Ask your administrator to add "
                "you to the group.",
                "group_join",
            )
        return None
    if facts.team_bot or outsider_allowed(user_id, set(global_bots)):
        return None
    if facts.former_member:
        return Refusal(
            FORBIDDEN,
            f"You are no longer a member of the team {facts.team_name}, so you cannot join "
            "its rooms. Ask its owner or an admin to invite you again.",
            "former_member_join",
        )
    return Refusal(
        FORBIDDEN,
        f"This room belongs to the team {facts.team_name}, and only its members may join. "
        "Ask its owner or an admin to invite you to the team.",
        "outsider_join",
    )


def may_invite(facts: RoomFacts | None, invitee: str, bridge_bot: str, global_bots: tuple[str, ...]) -> Refusal | None:
    """Only members and allowed bots may be invited to a team room, whoever invites.

    A manager brings someone in with the bridge (``invite USER``, the API): it records the
    member first and then invites, so that invite passes. An invite by hand would skip the
    role, the power levels and the audit log, and after the fact the bridge removes such an
    outsider whoever invited them; before the write it is the same rule.
    """
    if not _enforced(facts) or invitee == bridge_bot or facts.role is not None:
        return None
    if facts.team_bot or outsider_allowed(invitee, set(global_bots)):
        return None
    return Refusal(
        FORBIDDEN,
        f"{invitee} is not a member of the team {facts.team_name}. Owners and admins add "
        "people with the Clutto bot (`!clutto invite USER`), which invites them to every team room.",
        "outsider_invite",
    )


def may_send_message(facts: RoomFacts | None, consented: bool, block_mode: bool, version: str) -> Refusal | None:
    """Consent block mode: a member who has not accepted the current policy cannot send in team rooms."""
    if not _enforced(facts) or facts.role is None or not block_mode or consented:
        return None
    return Refusal(
        CONSENT_NOT_GIVEN,
        f"The team {facts.team_name} asks you to accept the privacy policy version "
        f"{version} before you write in its rooms. Send `policy` to the Clutto bot to read it and "
        "`accept` to agree.",
        "consent_block",
    )


def may_send_widget(content: dict[str, Any], prefixes: list[str]) -> Refusal | None:
    """A widget must point under an allowed URL prefix; an empty content removes one and passes."""
    if not content or widget_allowed(content.get("url"), prefixes):
        return None
    return Refusal(
        FORBIDDEN,
        "This widget's address is not on the team's list of allowed integrations. An owner or "
        "admin can allow its URL prefix with `!clutto integrations allow https://...`.",
        "widget",
    )


def may_set_power_levels(wrong: dict[str, Any]) -> Refusal | None:
    """``wrong``: the managed keys that differ from what the team's roles give (``teams/power.differences``)."""
    if not wrong:
        return None
    keys = ", ".join(sorted(wrong))
    return Refusal(
        FORBIDDEN,
        f"Power levels in team rooms follow the team's roles ({keys} would differ). Change a "
        "role with `!clutto role USER ROLE`.",
        "power_levels",
    )


def profile_state_refusal() -> Refusal:
    """The published profile fields in a team space are written by the bridge only (P2)."""
    return Refusal(
        FORBIDDEN,
        "Profile fields are published by the Clutto bot from your profile. Change them with "
        "`!clutto profile set FIELD VALUE`.",
        "profile_state",
    )


def is_widget(event_type: str) -> bool:
    return event_type in WIDGET_EVENT_TYPES


def _enforced(facts: RoomFacts | None) -> TypeGuard[RoomFacts]:
    """A team room of a team the bridge enforces (active; not purging or deleting)."""
    return facts is not None and facts.active
