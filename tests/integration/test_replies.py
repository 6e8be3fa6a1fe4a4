"""What the bot's messages look like in a member's client: formatted from Markdown, replies to
the command (in its thread), user IDs as mentions, and help by section."""

from __future__ import annotations

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.helpers import Api, bot_chat, reply_to, send, team_with_member
from tests.integration.matrix_client import MatrixClient, wait_until

MATRIX_TO = "https://matrix.to/#/"


def formatted(event: dict) -> str:
    content = event["content"]
    assert content.get("format") == "org.matrix.custom.html", content
    return content["formatted_body"]


# One database: how the bot's messages render in a client; the bridge database only stores what every other test stores.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_replies_are_formatted_replies_that_mention_users(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]

    # A command in a thread of a team room: the answer replies to it inside the thread, and
    # the member it names is a pill (a matrix.to link) and in m.mentions.
    root = await send(owner, general, "Who should review the launch plan?")
    command = await send(
        owner,
        general,
        f"!clutto role {member.user_id} admin",
        {"rel_type": "m.thread", "event_id": root, "is_falling_back": True, "m.in_reply_to": {"event_id": root}},
    )
    answer = await reply_to(owner, general, command, bot)
    relation = answer["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == root
    assert relation["m.in_reply_to"] == {"event_id": command}
    assert f'<a href="{MATRIX_TO}{member.user_id}">{member.user_id}</a>' in formatted(answer)
    assert f"<strong>{team.name}</strong>" in formatted(answer)
    assert set(answer["content"]["m.mentions"]["user_ids"]) == {member.user_id, owner.user_id}
    assert answer["content"]["body"] == f"{member.user_id} is now admin in {team.name}."

    # Outside a thread, a plain reply.
    command = await send(owner, general, "!clutto team info")
    info = await reply_to(owner, general, command, bot)
    assert info["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": command}}
    assert team.name in info["content"]["body"]

    # The welcome in the chat with the bot is formatted, and so is a service notice.
    dm = await bot_chat(bridge, member)
    welcome = await member.wait_for_notice(dm, "please read our privacy policy", sender=bot)
    assert f"Welcome to <strong>{team.name}</strong>!" in formatted(welcome)
    assert "<code>accept</code>" in formatted(welcome) and "`" not in welcome["content"]["body"]
    status, _ = await Api(bridge, http).call(
        "POST", "/notices", json={"kind": "service", "text": "Maintenance **tonight**, 22:00 UTC.", "team_id": team.id}
    )
    assert status == 200
    notice = await member.wait_for_notice(dm, "Service notice: Maintenance tonight, 22:00 UTC.", sender=bot)
    assert formatted(notice) == "<strong>Service notice:</strong> Maintenance <strong>tonight</strong>, 22:00 UTC."


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_policy_reads_as_a_formatted_document(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    greeting = await alice.wait_for_notice(dm, "Send help", sender=bot)
    assert "<code>help</code>" in formatted(greeting)

    command = await send(alice, dm, "policy")
    policy = await reply_to(alice, dm, command, bot)
    assert policy["content"]["body"].startswith("Privacy policy, version")
    html, body = formatted(policy), policy["content"]["body"]
    # The policy of the checkout's config/policy (the example config's policy.consent.texts).
    assert "<h1>Clutto privacy policy" in html and "<h2>2. Your profile</h2>" in html and "<strong>" in html
    assert "# " not in html and "# " not in body and "**" not in body
    # The file wraps its lines at about 95 columns; the member sees whole paragraphs.
    assert "including edits and deletions, are Customer Data" in body
    who_decides = html.split("<h2>9. Who decides about your team's data</h2>")[1].split("</p>")[0].strip()
    assert who_decides.startswith("<p>Your team's Customer controls") and "\n" not in who_decides


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_help_groups_commands_and_shows_one_with_an_example(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)

    await send(alice, dm, "help")
    listing = await alice.wait_for_notice(dm, "Clutto commands", sender=bot)
    body = listing["content"]["body"]
    sections = ["Teams", "Members", "Rooms", "Retention", "Integrations", "Profile and privacy"]
    html = formatted(listing)
    positions = [html.index(f"<strong>{section}</strong>") for section in sections]
    assert positions == sorted(positions)
    assert "<li><code>team create NAME</code>: " in html
    assert "- `invite USER [ROLE]`: " in body and "`!clutto invite" not in body

    await send(alice, dm, "help invite")
    one = await alice.wait_for_notice(dm, "Example: `invite @bob:example.org admin`", sender=bot)
    assert formatted(one).startswith("<code>invite USER [ROLE]</code>")

    # In a room that is not the chat with the bot, the prefix is shown.
    room = (await alice.request("POST", "/v3/createRoom", {"invite": [bot], "preset": "private_chat"}))["room_id"]
    await bridge_joined(alice, room, bot)
    await send(alice, room, "!clutto help team create")
    one = await alice.wait_for_notice(room, "Example: `!clutto team create Acme Corp`", sender=bot)
    assert "`!clutto team create NAME`" in one["content"]["body"]


async def bridge_joined(client: MatrixClient, room_id: str, bot: str) -> None:
    async def joined() -> bool:
        return bot in await client.joined_members(room_id)

    await wait_until(joined, what="the bot to accept the invite")
