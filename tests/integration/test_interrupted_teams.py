"""An `invite` or `team create` killed half-way leaves no half-done work: running the invite
again completes it, and a restart removes every space and room a creation made but never
recorded, as the homeserver itself shows (client API for the invitee, admin API room list).

The bridge runs as its own process; test hooks (``clutto_bridge/testhooks.py``) end it at a
fixed point, as ``kill -9`` would. Other tests' rooms share the session's Synapse, so each
test compares the homeserver's room list with the one before it acted.
"""

from __future__ import annotations

import aiohttp
import pytest

from clutto_bridge import testhooks
from clutto_bridge.config import Settings
from clutto_bridge.db import create_database
from clutto_bridge.db.team import TeamState
from clutto_bridge.matrix import spaces
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import bot_says, create_team_in_a_new_chat, run_until_hook, unfinished_and_team


async def _rooms_on_homeserver(http: aiohttp.ClientSession, settings: Settings) -> set[str]:
    """Every room the homeserver holds, from the Synapse admin API (the bot is an admin)."""
    rooms: set[str] = set()
    start: int | None = 0
    headers = {"Authorization": f"Bearer {settings.appservice.as_token}"}
    while start is not None:
        url = f"{settings.homeserver.address}/_synapse/admin/v1/rooms?limit=500&from={start}"
        async with http.get(url, headers=headers) as resp:
            resp.raise_for_status()
            page = await resp.json()
        rooms |= {room["room_id"] for room in page["rooms"]}
        start = page.get("next_batch")
    return rooms


async def test_an_invite_killed_after_the_space_invite_is_completed_when_it_runs_again(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings()
    bot = settings.bot_mxid
    alice, bob = await new_user("alice"), await new_user("bob")
    bridge = await bridges.start(settings)
    team = await bridge.teams.create(unique("Invites"), alice.user_id)
    everywhere = set(await bridge.teams.room_ids(team))
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    await bridges.stop(bridge)

    async def invite() -> None:
        await alice.send_text(dm, f"invite {bob.user_id} admin")

    code = await run_until_hook(bridges, http, settings, {"CLUTTO_TEST_EXIT_AFTER_SPACE_INVITE": bob.user_id}, invite)
    assert code == testhooks.EXIT_CODE
    # Killed half-way: a member in the bridge's records, invited to the space only.
    assert await bob.invited_rooms() & everywhere == {team.space_id}

    # The command runs again from the inbox and completes what was missing.
    bridge = await bridges.start(settings)
    await alice.wait_for_notice(dm, f"Invited {bob.user_id}", sender=bot, timeout=60)
    await bob.wait_for_invites(everywhere)
    admin_level = settings.bridge.power_levels["admin"]
    for room_id in everywhere:
        assert (await bridge.homeserver.power_levels(room_id))["users"].get(bob.user_id) == admin_level, room_id
    recorded = [e for e in await bridge.audit.for_team(team.id, "member_invited") if e.target == bob.user_id]
    assert len(recorded) == 1

    # Nothing is missing now: only then is it "already a member".
    await alice.send_text(dm, f"invite {bob.user_id} admin")
    await alice.wait_for_notice(dm, "already a member", sender=bot)
    said = await bot_says(alice, dm, bot)
    assert sum(f"Invited {bob.user_id}" in b for b in said) == 1, said
    assert sum("already a member" in b for b in said) == 1, said


@pytest.mark.promise("P1")
@pytest.mark.parametrize("hook", ["EXIT_AFTER_SPACE_CREATED", "EXIT_AFTER_ROOM_CREATED"])
async def test_a_team_create_killed_before_recording_a_room_leaves_no_orphan_after_restart(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, hook: str
) -> None:
    settings = bridges.settings()
    bot = settings.bot_mxid
    alice = await new_user("alice")
    name = unique("Orphans")
    before = await _rooms_on_homeserver(http, settings)
    command, chat = create_team_in_a_new_chat(alice, bot, name)

    code = await run_until_hook(bridges, http, settings, {f"CLUTTO_TEST_{hook}": name}, command)
    assert code == testhooks.EXIT_CODE
    _, team = await unfinished_and_team(settings, name)
    assert team.state == TeamState.CREATING
    made = await _rooms_on_homeserver(http, settings) - before - {chat[0]}
    orphans = made - {team.space_id}
    assert len(orphans) == 1, made  # made by the homeserver, recorded nowhere

    bridge = await bridges.start(settings)
    await alice.wait_for_notice(chat[0], "Team created", sender=bot, timeout=60)
    [team] = await bridge.teams.all()
    assert team.state == TeamState.ACTIVE
    rooms = set(await bridge.teams.room_ids(team))
    assert len(rooms) == 1 + len(settings.bridge.default_rooms)
    # Every room made since the command is the team's; the orphan is gone from the homeserver.
    assert await _rooms_on_homeserver(http, settings) - before - {chat[0]} == rooms
    await alice.wait_for_invites(rooms)
    assert {r["room_id"] for r in await alice.hierarchy(team.space_id)} == rooms


async def _as_version_18_left_it(database: str) -> None:
    """Take the schema back to v18: the database of a bridge from before creation markers."""
    db = create_database(database)
    await db.start()
    try:
        await db.execute("DROP TABLE room_creation")
        # v20 to v24 run again after it.
        await db.execute("DROP TABLE crypto_pickle_key")
        await db.execute("DROP TABLE timeline_session")
        await db.execute("ALTER TABLE timeline_room DROP COLUMN sessions_deleted")
        await db.execute("DROP TABLE scim_group_member")
        await db.execute("DROP TABLE scim_group")
        await db.execute("DROP TABLE scim_user")
        await db.execute("DROP TABLE scim_token")
        await db.execute("ALTER TABLE team DROP COLUMN exports_made")
        await db.execute("UPDATE clutto_version SET version=18")
    finally:
        await db.stop()


async def test_the_upgrade_purges_orphans_made_before_markers_and_nothing_else(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings()
    alice, bob = await new_user("alice"), await new_user("bob")
    bridge = await bridges.start(settings)
    # A new database has no rooms from before markers: nothing to look for.
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM room_creation") == 0
    team = await bridge.teams.create(unique("Legacy"), alice.user_id)
    hs, s = bridge.homeserver, settings.bridge
    shape = {
        "owner": alice.user_id,
        "levels": s.power_levels,
        "room_version": s.room_version,
        "retention_ms": 86_400_000,
    }
    # What an interrupted creation of an older version left: a space and a room in it, no marker.
    orphan_space = await spaces.create_space(hs.bot, name="Orphan", marker={}, **shape)
    orphan_room = await spaces.create_group_room(
        hs.bot, space_id=orphan_space, name="General", server_name=settings.homeserver.domain, marker={}, **shape
    )
    # Kept: a space of that shape with a person invited, a plain room of the bot, its chat with a user.
    peopled = await spaces.create_space(hs.bot, name="Peopled", marker={}, **shape)
    await hs.invite_once(peopled, bob.user_id)
    plain = await hs.bot.create_room(name="Not a team's")
    chat = await hs.create_bot_chat(bob.user_id)
    await bridges.stop(bridge)
    await _as_version_18_left_it(bridges.database)
    before = await _rooms_on_homeserver(http, settings)
    assert {orphan_space, orphan_room, peopled, plain, chat} <= before

    bridge = await bridges.start(settings)
    now = await _rooms_on_homeserver(http, settings)
    assert not {orphan_space, orphan_room} & now
    assert {peopled, plain, chat} | set(await bridge.teams.room_ids(team)) <= now
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM room_creation") == 0  # looked once
