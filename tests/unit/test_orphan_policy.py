"""Which rooms of the bot are orphans of an interrupted team creation (policy/orphans.py)."""

from __future__ import annotations

import pytest

from clutto_bridge.policy.orphans import CREATION_KEY, TEAM_KEY, Verdict, verdict

BOT = "@clutto:example.org"
ALICE = "@alice:example.org"


def create(sender: str = BOT, **content) -> dict:
    return {"type": "m.room.create", "state_key": "", "sender": sender, "content": content}


def member(user: str, membership: str) -> dict:
    return {"type": "m.room.member", "state_key": user, "content": {"membership": membership}}


PARENT = {"type": "m.space.parent", "state_key": "!space:example.org", "content": {"via": ["example.org"]}}
MARKED = {CREATION_KEY: "m1", TEAM_KEY: "t1"}


@pytest.mark.parametrize(
    "state, markers, legacy, expected",
    [
        # A pending creation's room with only the bot in it.
        ([create(**MARKED), member(BOT, "join")], {"m1"}, False, Verdict.PURGE),
        ([create(type="m.space", **MARKED), member(BOT, "join")], {"m1"}, True, Verdict.PURGE),
        # A marker nobody left pending: another process's room, or one recorded since.
        ([create(**MARKED), member(BOT, "join")], {"m2"}, False, Verdict.KEEP),
        ([create(**MARKED), member(BOT, "join")], set(), True, Verdict.KEEP),
        # People in it: never purged automatically, whatever the marker says.
        ([create(**MARKED), member(BOT, "join"), member(ALICE, "invite")], {"m1"}, False, Verdict.HAS_PEOPLE),
        ([create(**MARKED), member(BOT, "join"), member(ALICE, "join")], {"m1"}, False, Verdict.HAS_PEOPLE),
        # Someone who left does not count.
        ([create(**MARKED), member(BOT, "join"), member(ALICE, "leave")], {"m1"}, False, Verdict.PURGE),
        # Made before markers: only in the one legacy pass, only the bot's, only team-shaped.
        ([create(type="m.space"), member(BOT, "join")], set(), True, Verdict.PURGE),
        ([create(), PARENT, member(BOT, "join")], set(), True, Verdict.PURGE),
        ([create(type="m.space"), member(BOT, "join")], {"m1"}, False, Verdict.KEEP),
        ([create(), member(BOT, "join")], set(), True, Verdict.KEEP),  # the bot's chat with a user, say
        ([create(sender=ALICE, type="m.space"), member(BOT, "join")], set(), True, Verdict.KEEP),
        ([create(type="m.space"), member(BOT, "join"), member(ALICE, "invite")], set(), True, Verdict.HAS_PEOPLE),
        # No create event readable: nothing is known, nothing is done.
        ([], {"m1"}, True, Verdict.KEEP),
    ],
)
def test_orphan_verdict(state: list[dict], markers: set[str], legacy: bool, expected: Verdict) -> None:
    assert verdict(state, bot=BOT, markers=markers, legacy=legacy) == expected
