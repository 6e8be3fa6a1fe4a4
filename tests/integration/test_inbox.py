"""A bot command survives the bridge dying after it acknowledged the transaction: the event
waits in the inbox and runs on the next start, and the member sees one answer and one team.

The bridge runs as its own process behind the forwarding front; test hooks
(``clutto_bridge/testhooks.py``) end it at a fixed point, as ``kill -9`` would.
"""

from __future__ import annotations

import aiohttp

from clutto_bridge import testhooks
from clutto_bridge.db.team import TeamState
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import bot_says, create_team_in_a_new_chat, run_until_hook, unfinished_and_team


async def test_a_command_killed_right_after_the_ack_is_answered_once_after_restart(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings()
    bot = settings.bot_mxid
    alice = await new_user("alice")
    name = unique("Acked")
    command, chat = create_team_in_a_new_chat(alice, bot, name)

    code = await run_until_hook(bridges, http, settings, {"CLUTTO_TEST_EXIT_AFTER_ACK": f"team create {name}"}, command)
    dm = chat[0]
    assert code == testhooks.EXIT_CODE
    # Acknowledged and gone before the command's first step: no team, no answer, and the
    # command waits in the inbox.
    unfinished, team = await unfinished_and_team(settings, name)
    assert unfinished >= 1 and team is None
    said = await bot_says(alice, dm, bot)
    assert not any("Creating team" in b or "Team created" in b for b in said), said

    bridge = await bridges.start(settings)
    await alice.wait_for_notice(dm, "Team created", sender=bot, timeout=60)
    await alice.send_text(dm, "team use")  # answered after the replayed command (one lane per room)
    await alice.wait_for_notice(dm, "Commands here are about", sender=bot)
    said = await bot_says(alice, dm, bot)
    assert sum("Creating team" in b for b in said) == 1, said
    assert sum("Team created" in b for b in said) == 1, said
    assert [t.name for t in await bridge.teams.all()] == [name]
    assert (await unfinished_and_team(settings, name))[0] == 0


async def test_a_command_killed_after_the_space_is_finished_and_confirmed_once(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings()
    bot = settings.bot_mxid
    alice = await new_user("alice")
    name = unique("Halfway")
    command, chat = create_team_in_a_new_chat(alice, bot, name)

    code = await run_until_hook(bridges, http, settings, {"CLUTTO_TEST_EXIT_AFTER_SPACE": name}, command)
    dm = chat[0]
    assert code == testhooks.EXIT_CODE
    # Killed in the middle: the space exists, the first answer was sent, the confirmation not.
    unfinished, team = await unfinished_and_team(settings, name)
    assert unfinished >= 1 and team.state == TeamState.CREATING and team.space_id
    said = await bot_says(alice, dm, bot)
    assert sum("Creating team" in b for b in said) == 1 and not any("Team created" in b for b in said), said

    bridge = await bridges.start(settings)
    await alice.wait_for_notice(dm, "Team created", sender=bot, timeout=60)
    await alice.send_text(dm, "team use")
    await alice.wait_for_notice(dm, "Commands here are about", sender=bot)
    said = await bot_says(alice, dm, bot)
    # The repeated "Creating team" went out under the same transaction id: still one message.
    assert sum("Creating team" in b for b in said) == 1, said
    assert sum("Team created" in b for b in said) == 1, said
    assert not any("already exists" in b for b in said), said
    [again] = await bridge.teams.all()
    assert (again.id, again.space_id, again.state) == (team.id, team.space_id, TeamState.ACTIVE)
    await alice.wait_for_invites({team.space_id})


async def test_a_reply_sent_twice_with_one_transaction_id_is_one_message(bridges: Bridges, new_user) -> None:
    """What makes a repeated command's answer one message: Synapse answers a repeated
    PUT /send/{txnId} from the same appservice with the event it already made."""
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    first = await bridge.homeserver.send_notice(dm, "once only", txn_id="clutto.test.once")
    await bridges.stop(bridge)
    bridge = await bridges.start()  # a restarted bridge, as after a crash
    second = await bridge.homeserver.send_notice(dm, "once only", txn_id="clutto.test.once")
    other = await bridge.homeserver.send_notice(dm, "once only", txn_id="clutto.test.other")
    assert first == second != other
    await alice.wait_for_notice(dm, "once only", sender=bot)
    assert sum(b == "once only" for b in await bot_says(alice, dm, bot)) == 2  # "once" and "other"
