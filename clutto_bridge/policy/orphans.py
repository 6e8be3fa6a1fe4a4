"""Which room the bot is in is an orphan of an interrupted creation, and may be purged (P1).

Every space and group room the bridge creates carries a creation marker in its
``m.room.create`` content (``CREATION_KEY``, with the team's id under ``TEAM_KEY``), and the
marker is recorded as pending in the bridge database before the room is asked for; the row
goes when the room is recorded as the team's. A room is an orphan when all of these hold:

- the bridge database knows it as no team's space or room (the caller leaves those out);
- its marker is one a stopped process recorded and never finished (``markers``), or, once
  after the upgrade that introduced markers (``legacy``), it has no marker, the bot created
  it, and it is a space or has an ``m.space.parent``: what only team spaces and group rooms
  had before;
- nobody but the bot is in it or invited: the bridge invites people only after a room is
  recorded, so an interrupted creation has none. A room that looks orphaned but has people
  is never purged automatically (``HAS_PEOPLE``: the operator is told).

Rooms made by anyone else, and the bot's own chats with users, never match.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import Any

CREATION_KEY = "org.clutto.creation"
TEAM_KEY = "org.clutto.team"


class Verdict(StrEnum):
    KEEP = "keep"
    PURGE = "purge"
    HAS_PEOPLE = "has_people"


def verdict(state: Iterable[Mapping[str, Any]], *, bot: str, markers: Collection[str], legacy: bool) -> Verdict:
    """Decide from a room's current state events whether it is an orphan to purge."""
    events = list(state)
    create = next((e for e in events if e.get("type") == "m.room.create" and e.get("state_key") == ""), None)
    if create is None:
        return Verdict.KEEP
    content = create.get("content") or {}
    marker = content.get(CREATION_KEY)
    if marker is not None:
        ours = marker in markers
    else:
        ours = legacy and _made_by(create, bot) and _team_shaped(content, events)
    if not ours:
        return Verdict.KEEP
    people = [
        e
        for e in events
        if e.get("type") == "m.room.member"
        and e.get("state_key") != bot
        and (e.get("content") or {}).get("membership") in ("join", "invite", "knock")
    ]
    return Verdict.HAS_PEOPLE if people else Verdict.PURGE


def _made_by(create: Mapping[str, Any], bot: str) -> bool:
    # Room versions before 11 also name the creator in the content; the sender always does.
    return create.get("sender") == bot


def _team_shaped(content: Mapping[str, Any], events: list[Mapping[str, Any]]) -> bool:
    return content.get("type") == "m.space" or any(e.get("type") == "m.space.parent" for e in events)
