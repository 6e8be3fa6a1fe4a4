"""Group rooms and individual chats of a team, as members see them."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.helpers import Api, team_with_member
from tests.integration.matrix_client import MatrixError, wait_until


@pytest.mark.promise("P1")
async def test_admin_creates_and_archives_a_group_room(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await member.send_text(general, "!clutto room create Secret")
    await member.wait_for_notice(general, "Only the owner or an admin", sender=bot)

    await owner.send_text(general, "!clutto room create Design Reviews")
    await owner.wait_for_notice(general, "Created **Design Reviews**".replace("**", ""), sender=bot)
    [design] = [r for r in (await bridge.teams.view(team)).rooms if r.name == "Design Reviews"]
    await member.wait_for_invites({design.room_id})
    assert "Design Reviews" in {r.get("name") for r in await member.hierarchy(team.space_id)}
    await member.join(design.room_id)
    rule = await member.state(design.room_id, "m.room.join_rules")
    assert rule["join_rule"] == "restricted"
    await owner.send_text(general, "!clutto room create design reviews")
    await owner.wait_for_notice(general, "already has a room named", sender=bot)

    await owner.send_text(general, "!clutto room archive Design Reviews")
    await owner.wait_for_notice(general, "Archived", sender=bot)
    assert "Design Reviews" not in {r.get("name") for r in await member.hierarchy(team.space_id)}
    with pytest.raises(MatrixError) as refused:
        await member.send_text(design.room_id, "still here?")
    assert refused.value.status == 403


@pytest.mark.promise("P1")
async def test_member_opens_a_direct_chat_marked_as_direct(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    outsider = await new_user("outsider")
    general = rooms[0]
    await member.send_text(general, f"!clutto dm {outsider.user_id}")
    await member.wait_for_notice(general, "direct chats are between members", sender=bot)

    await member.send_text(general, f"!clutto dm {owner.user_id}")
    await member.wait_for_notice(general, "I opened a direct chat", sender=bot)
    [dm] = [r for r in (await bridge.teams.view(team)).rooms if r.kind == "direct"]

    async def invite_state() -> dict | None:
        sync = await owner.request("GET", "/v3/sync", timeout="0")
        invite = sync.get("rooms", {}).get("invite", {}).get(dm.room_id)
        return invite

    invite = await wait_until(invite_state, what="the owner's invite to the direct chat")
    own = [
        e for e in invite["invite_state"]["events"] if e["type"] == "m.room.member" and e["state_key"] == owner.user_id
    ]
    assert own[0]["content"]["is_direct"] is True
    for user, peer in ((owner, member), (member, owner)):
        direct = await user.request("GET", f"/v3/user/{quote(user.user_id)}/account_data/m.direct")
        assert dm.room_id in direct[peer.user_id]
    await owner.join(dm.room_id)

    # The API finds the same chat instead of making a second one.
    status, body = await Api(bridge, http).call(
        "POST", f"/teams/{team.id}/direct", json={"user_ids": [owner.user_id, member.user_id]}
    )
    assert (status, body["room_id"]) == (200, dm.room_id)

    # Removing the member takes them out of the individual chat too.
    await bridge.members.remove(team, member.user_id, actor=owner.user_id)
    event = await owner.state(dm.room_id, "m.room.member", member.user_id)
    assert event["membership"] == "leave" and "Removed from the team" in event["reason"]
