"""A Customer creates a team from their Matrix client; members see its space and rooms."""

from __future__ import annotations

import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.matrix_client import MatrixError, wait_until


@pytest.mark.promise("P1")
async def test_member_sees_space_with_team_rooms(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    bob = await new_user("bob")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)

    name = unique("Acme")
    await alice.send_text(dm, f"team create {name}")
    reply = await alice.wait_for_notice(dm, "Team created", sender=bot)
    assert "<strong>" in reply["content"]["formatted_body"]
    team = (await bridge.teams.of_user(alice.user_id))[0]
    assert team.name == name

    # The owner is invited to the space and both default rooms, and is its owner (100).
    rooms = {r.name: r.room_id for r in (await bridge.teams.view(team)).rooms}
    assert set(rooms) == {"general", "random"}
    await alice.wait_for_invites({team.space_id, *rooms.values()})
    await alice.join(team.space_id)
    levels = await alice.state(team.space_id, "m.room.power_levels")
    assert levels["users"][alice.user_id] == 100
    create = await alice.state(team.space_id, "m.room.create")
    assert create["type"] == "m.space"

    # The owner invites Bob from the team's general room with the prefixed command.
    await alice.join(rooms["general"])
    await alice.send_text(rooms["general"], f"!clutto invite {bob.user_id}")
    await alice.wait_for_notice(rooms["general"], f"Invited {bob.user_id}", sender=bot)

    # Bob accepts the space invite and sees the team's rooms in the space hierarchy.
    await bob.wait_for_invites({team.space_id})
    await bob.join(team.space_id)
    hierarchy = await bob.hierarchy(team.space_id)
    names = {room.get("name") for room in hierarchy}
    assert {name, "general", "random"} <= names
    await bob.join(rooms["random"])
    assert bob.user_id in await bob.joined_members(rooms["random"])
    join_rule = await bob.state(rooms["random"], "m.room.join_rules")
    assert join_rule == {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": team.space_id}]}
    parent = await bob.state(rooms["random"], "m.space.parent", team.space_id)
    assert parent["canonical"] is True

    # The bridge followed Bob's join of the space.
    async def bob_joined() -> bool:
        view = await bridge.teams.view(team)
        return any(m.user_id == bob.user_id and m.membership == "joined" for m in view.members)

    await wait_until(bob_joined, what="the bridge to record Bob's join")


# One database: the homeserver's join rules refuse the outsider.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P1")
async def test_outsider_cannot_join_team_rooms(bridge: Bridge, new_user) -> None:
    owner = await new_user("owner")
    outsider = await new_user("outsider")
    team = await bridge.teams.create(unique("Closed"), owner=owner.user_id)
    general = (await bridge.teams.view(team)).rooms[0].room_id
    with pytest.raises(MatrixError) as refused:
        await outsider.join(general)
    assert refused.value.status == 403
    with pytest.raises(MatrixError) as refused:
        await outsider.join(team.space_id)
    assert refused.value.status == 403


async def test_second_team_with_same_name_is_refused(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    name = unique("Globex")
    await bridge.teams.create(name, owner=alice.user_id)
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    await alice.send_text(dm, f"team create   {name.upper()} ")
    await alice.wait_for_notice(dm, "already exists", sender=bot)
    assert [t.name for t in await bridge.teams.all()] == [name]


# One database: the bot's texts for a user of no team.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_team_commands_explain_themselves(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    await alice.send_text(dm, "help")
    help_text = (await alice.wait_for_notice(dm, "Clutto commands", sender=bot))["content"]["body"]
    # In the chat with the bot, no prefix is shown.
    for usage in ("`help COMMAND`", "`team create NAME`", "`team info`", "`invite USER [ROLE]`"):
        assert usage in help_text
    assert "`!clutto team" not in help_text
    await alice.send_text(dm, "team info")
    await alice.wait_for_notice(dm, "You are in no team yet", sender=bot)
    await alice.send_text(dm, "invite @nobody:localhost")
    await alice.wait_for_notice(dm, "not an owner or admin of any team", sender=bot)
    await alice.send_text(dm, "frobnicate now")
    await alice.wait_for_notice(dm, "Unknown command", sender=bot)
    await alice.send_text(dm, "team create")
    await alice.wait_for_notice(dm, "Give the team a name", sender=bot)


async def test_member_cannot_invite_and_unknown_users_are_refused(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner = await new_user("owner")
    member = await new_user("member")
    team = await bridge.teams.create(unique("Initech"), owner=owner.user_id)
    await bridge.members.invite(team, member.user_id, actor=owner.user_id)
    general = (await bridge.teams.view(team)).rooms[0].room_id
    await member.wait_for_invites({team.space_id, general})
    await member.join(team.space_id)
    await member.join(general)
    await member.send_text(general, "!clutto invite @someone:localhost")
    await member.wait_for_notice(general, "Only the owner or an admin", sender=bot)

    await owner.join(general)
    await owner.send_text(general, "!clutto invite @ghost-404:localhost")
    await owner.wait_for_notice(general, "does not exist on the homeserver", sender=bot)
    await owner.send_text(general, f"!clutto invite {member.user_id} boss")
    await owner.wait_for_notice(general, "Unknown role", sender=bot)
    await owner.send_text(general, f"!clutto invite {member.user_id}")
    await owner.wait_for_notice(general, "already a member", sender=bot)
    view = await bridge.teams.view(team)
    assert sorted(m.user_id for m in view.members) == sorted([owner.user_id, member.user_id])


async def test_admin_invite_gets_admin_power_level(bridge: Bridge, new_user) -> None:
    owner = await new_user("owner")
    helper = await new_user("helper")
    team = await bridge.teams.create(unique("Umbrella"), owner=owner.user_id)
    await bridge.members.invite(team, helper.user_id, "admin", actor=owner.user_id)
    view = await bridge.teams.view(team)
    await helper.wait_for_invites({team.space_id})
    await helper.join(team.space_id)
    for room_id in [team.space_id] + [r.room_id for r in view.rooms]:
        await helper.join(room_id)
        levels = await helper.state(room_id, "m.room.power_levels")
        assert levels["users"][helper.user_id] == bridge.settings.bridge.power_levels["admin"]
