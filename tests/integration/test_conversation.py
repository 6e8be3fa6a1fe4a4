"""The chat with the bot as a member sees it: one chat, one welcome per team, team commands
from the chat, and team details only where the team may read them."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.matrix_client import MatrixClient, wait_until


async def chats_with_bot(user: MatrixClient, bot: str) -> set[str]:
    """The rooms the user's client shows as a chat with the bot: a pending direct invite from
    it, or a joined room where the two of them are the only members."""
    sync = await user.request("GET", "/v3/sync", timeout="0")
    rooms = sync.get("rooms", {})
    chats = set()
    for room_id, invite in rooms.get("invite", {}).items():
        for event in invite["invite_state"]["events"]:
            if (
                event["type"] == "m.room.member"
                and event["state_key"] == user.user_id
                and event["sender"] == bot
                and event["content"].get("is_direct")
            ):
                chats.add(room_id)
    for room_id in rooms.get("join", {}):
        if await user.joined_members(room_id) == {user.user_id, bot}:
            chats.add(room_id)
    return chats


async def bodies(user: MatrixClient, room_id: str, sender: str) -> list[str]:
    return [
        e["content"].get("body", "")
        for e in await user.messages(room_id, limit=100)
        if e["type"] == "m.room.message" and e["sender"] == sender
    ]


async def join_team(user: MatrixClient, bridge: Bridge, team) -> None:
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    await user.wait_for_invites({team.space_id, *rooms})
    for room_id in [team.space_id, *rooms]:
        await user.join(room_id)


async def test_a_member_of_two_teams_has_one_chat_with_the_bot_and_one_welcome_per_team(
    bridge: Bridge, new_user
) -> None:
    bot = bridge.settings.bot_mxid
    version = bridge.settings.consent.version
    owner, bob = await new_user("owner"), await new_user("bob")
    acme = await bridge.teams.create(unique("Acme"), owner=owner.user_id)
    globex = await bridge.teams.create(unique("Globex"), owner=owner.user_id)
    for team in (acme, globex):
        await join_team(owner, bridge, team)
        await bridge.members.invite(team, bob.user_id, actor=owner.user_id)
    # Both spaces joined at once: the two welcomes race for the chat.
    await asyncio.gather(join_team(bob, bridge, acme), join_team(bob, bridge, globex))

    [dm] = await wait_until(lambda: chats_with_bot(bob, bot), what="the bot's chat with bob")
    await bob.join(dm)
    await bob.wait_for_notice(dm, f"Welcome to {acme.name}", sender=bot)
    await bob.wait_for_notice(dm, f"Welcome to {globex.name}", sender=bot)
    said = await bodies(bob, dm, bot)
    assert sum(f"please read our privacy policy (version {version})" in b for b in said) == 1, said
    assert any("team use NAME" in b for b in said), said  # the second welcome says how to choose

    assert sum(f"Welcome to {acme.name}" in b for b in said) == 1, said

    # Bob starts a chat with the bot himself, as docs/members/commands.md says: it becomes the one chat.
    mine = await bob.create_dm(bot)
    await bob.wait_for_notice(mine, "I closed our older chat", sender=bot)
    await bob.wait_for_notice(dm, "I continue our conversation in our newer chat", sender=bot)

    async def one_chat() -> bool:
        return await chats_with_bot(bob, bot) == {mine}

    await wait_until(one_chat, what="the older chat to be closed")
    await bridge.notices.tell(bob.user_id, "Service notice: maintenance tonight")
    await bob.wait_for_notice(mine, "maintenance tonight", sender=bot)
    assert not any("maintenance tonight" in b for b in await bodies(bob, dm, bot))
    assert await chats_with_bot(bob, bot) == {mine}


async def test_a_chat_the_user_starts_replaces_the_unread_invite_and_keeps_its_welcome(
    bridge: Bridge, new_user
) -> None:
    bot = bridge.settings.bot_mxid
    owner, bob = await new_user("owner"), await new_user("bob")
    team = await bridge.teams.create(unique("Initech"), owner=owner.user_id)
    await join_team(owner, bridge, team)
    await bridge.members.invite(team, bob.user_id, actor=owner.user_id)
    await join_team(bob, bridge, team)
    [invited] = await wait_until(lambda: chats_with_bot(bob, bot), what="the bot's invite to a chat")
    mine = await bob.create_dm(bot)
    await bob.wait_for_notice(mine, "Send help", sender=bot)

    async def withdrawn() -> bool:
        return invited not in await bob.invited_rooms()

    await wait_until(withdrawn, what="the older invite to be withdrawn")
    assert await chats_with_bot(bob, bot) == {mine}
    # The welcome bob never read there is said again in the chat he reads.
    await bob.wait_for_notice(mine, f"Welcome to {team.name}", sender=bot)


async def test_team_details_stay_out_of_a_room_that_is_not_a_team_room(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice, guest = await new_user("alice"), await new_user("guest")
    teams = [await bridge.teams.create(unique(name), owner=alice.user_id) for name in ("Acme", "Globex")]
    plain = (await alice.request("POST", "/v3/createRoom", {"preset": "private_chat", "name": "Party"}))["room_id"]
    for user in (bot, guest.user_id):
        await alice.request("POST", f"/v3/rooms/{quote(plain)}/invite", {"user_id": user})
    await guest.join(plain)

    async def bot_joined() -> bool:
        return bot in await alice.joined_members(plain)

    await wait_until(bot_joined, what="the bot to join the plain room")
    await alice.send_text(plain, "!clutto team info")
    pointer = await guest.wait_for_notice(
        plain, "I answer that only in your team's rooms or in our direct chat", sender=bot
    )
    await alice.send_text(plain, "!clutto mydata")
    personal = await guest.wait_for_notice(plain, "I answer it only in our direct chat", sender=bot)
    await alice.send_text(plain, "!clutto retention show")
    await guest.wait_for_notice(plain, "I answer that only in your team's rooms", sender=bot)

    seen = "\n".join(await bodies(guest, plain, bot))
    for team in teams:
        assert team.name not in seen and team.id not in seen
    assert alice.user_id not in seen and "team room" not in personal["content"]["body"]
    assert len(pointer["content"]["body"].splitlines()) == 1
    # The pointer leads to alice's chat with the bot, where the same command answers.
    dm = await bridge.management_rooms.room_of(alice.user_id)
    assert dm in pointer["content"]["body"]
    await alice.join(dm)
    await alice.send_text(dm, "team info")
    await alice.wait_for_notice(dm, teams[1].name, sender=bot)


async def test_a_member_of_several_teams_names_the_team_in_the_chat_with_the_bot(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice, bob = await new_user("alice"), await new_user("bob")
    acme = await bridge.teams.create(unique("Acme"), owner=alice.user_id)
    globex = await bridge.teams.create(unique("Globex"), owner=alice.user_id)
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)

    await alice.send_text(dm, f"invite {bob.user_id}")
    await alice.wait_for_notice(dm, "Choose the one this chat is about with", sender=bot)
    await alice.send_text(dm, f"team use {globex.name.upper()}")
    await alice.wait_for_notice(dm, f"Commands here are now about {globex.name}", sender=bot)
    await alice.send_text(dm, f"invite {bob.user_id}")
    await alice.wait_for_notice(dm, f"Invited {bob.user_id} to {globex.name}", sender=bot)
    await bob.wait_for_invites({globex.space_id})
    assert acme.space_id not in await bob.invited_rooms()
    await alice.send_text(dm, "retention set 30d")
    await alice.wait_for_notice(dm, f"{globex.name} now keeps messages for", sender=bot)
    assert (await bridge.teams.get(globex.id)).retention_seconds == 30 * 86400
    assert (await bridge.teams.get(acme.id)).retention_seconds is None

    await alice.send_text(dm, "team use")
    await alice.wait_for_notice(dm, f"Commands here are about {globex.name}", sender=bot)
    await alice.send_text(dm, "team use Nonexistent")
    await alice.wait_for_notice(dm, "You are in no team of that name", sender=bot)


async def test_team_info_counts_direct_chats_without_naming_who_talks(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, third = await new_user("owner"), await new_user("member"), await new_user("third")
    team = await bridge.teams.create(unique("Umbrella"), owner=owner.user_id)
    for user in (member, third):
        await bridge.members.invite(team, user.user_id, actor=owner.user_id)
    for user in (owner, member, third):
        await join_team(user, bridge, team)
    general = (await bridge.teams.view(team)).rooms[0].room_id
    await member.send_text(general, f"!clutto dm {owner.user_id}")
    await member.wait_for_notice(general, "I opened a direct chat", sender=bot)

    await third.send_text(general, "!clutto team info")
    info = (await third.wait_for_notice(general, "Direct chats between members: 1", sender=bot))["content"]["body"]
    rooms_line = next(line for line in info.splitlines() if line.startswith("Rooms:"))
    assert rooms_line == "Rooms: general, random"
    assert " & " not in info  # the direct chat's name would tell who talks with whom
