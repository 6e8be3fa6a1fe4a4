"""Third-party integrations: only allowed bots and widgets stay in team rooms."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.helpers import Api, team_with_member
from tests.integration.matrix_client import wait_until


@pytest.mark.promise("P9", "P14")
async def test_bot_not_on_the_list_is_removed_and_allowed_bot_stays(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user, role="admin")
    stranger = await new_user("strangebot")
    helper = await new_user("helperbot")
    general = rooms[0]

    # Only the bot may invite (issue 23); a room whose levels predate that still lets an admin.
    old = {**await owner.state(general, "m.room.power_levels"), "invite": 50}
    await bridge.homeserver.set_power_levels(general, old)
    await owner.request("POST", f"/v3/rooms/{quote(general)}/invite", {"user_id": stranger.user_id})

    async def out(user_id: str) -> dict | None:
        event = await owner.state(general, "m.room.member", user_id)
        return event if event["membership"] == "leave" else None

    event = await wait_until(lambda: out(stranger.user_id), what="the unknown account to be removed")
    assert f"is not a member of the team {team.name}" in event["reason"]

    # An allowed bot comes in through the bridge, which invites it to the space and group rooms.
    await owner.send_text(general, f"!clutto integrations allow {helper.user_id}")
    await owner.wait_for_notice(general, "Allowed bot", sender=bot)
    await helper.wait_for_invites({team.space_id, *rooms})
    await helper.join(general)
    await owner.send_text(general, "!clutto integrations list")
    listing = await owner.wait_for_notice(general, "Integrations of", sender=bot)
    assert helper.user_id in listing["content"]["body"]
    assert helper.user_id in await owner.joined_members(general)

    # Denying the bot takes it out of the team's rooms.
    await owner.send_text(general, f"!clutto integrations deny {helper.user_id}")
    await owner.wait_for_notice(general, "Denied bot", sender=bot)
    event = await out(helper.user_id)
    assert event and "no longer an allowed integration" in event["reason"], event

    await member.send_text(general, "!clutto integrations allow not-a-thing")
    await member.wait_for_notice(general, "neither a bot", sender=bot)
    actions = [e.action for e in await bridge.audit.for_team(team.id)]
    # The unknown account once; the denied bot from the space and each room it was invited to.
    assert actions.count("integration_removed") == 1 + 1 + len(rooms)


@pytest.mark.promise("P9", "P14")
async def test_widget_outside_allowed_prefixes_is_removed(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    api = Api(bridge, http)
    status, listing = await api.call(
        "POST", f"/teams/{team.id}/integrations", json={"value": "https://meet.example.com/"}
    )
    assert status == 201 and listing["widget_url_prefixes"] == ["https://meet.example.com/"]

    path = f"/v3/rooms/{quote(general)}/state/im.vector.modular.widgets"
    good = {"type": "jitsi", "url": "https://meet.example.com/room-1", "name": "Meet"}
    bad = {"type": "custom", "url": "https://tracker.evil.example/pixel", "name": "Tracker"}
    await owner.request("PUT", f"{path}/good", good)
    await owner.request("PUT", f"{path}/bad", bad)

    async def bad_removed() -> bool:
        return await owner.state(general, "im.vector.modular.widgets", "bad") == {}

    await wait_until(bad_removed, what="the widget to be removed")
    assert await owner.state(general, "im.vector.modular.widgets", "good") == good
    # The removal is recorded right after the homeserver took it: wait for the record too.
    [entry] = await wait_until(lambda: bridge.audit.for_team(team.id, "widget_removed"), what="the audit record")
    assert entry.actor == owner.user_id and entry.detail["url"] == bad["url"]

    status, body = await api.call("DELETE", f"/teams/{team.id}/integrations?value=https://never.example/")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    status, body = await api.call("POST", f"/teams/{team.id}/integrations", json={"value": "ftp://x"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


# One database: refused on the homeserver's answer, before anything is stored.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_allowing_a_bot_that_does_not_exist_changes_nothing(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user, role="admin")
    missing = f"@nobot-{team.id}:{bridge.settings.homeserver.domain}"
    await owner.send_text(rooms[0], f"!clutto integrations allow {missing}")
    await owner.wait_for_notice(rooms[0], "does not exist on the homeserver", sender=bot)
    await owner.send_text(rooms[0], "!clutto integrations list")
    listing = await owner.wait_for_notice(rooms[0], "Integrations of", sender=bot)
    assert missing not in listing["content"]["body"]
