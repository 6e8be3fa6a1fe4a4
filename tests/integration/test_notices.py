"""Service notices reach every member; marketing only those who opted in, checked at send time."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.helpers import Api, openid_api, team_with_member
from tests.integration.matrix_client import wait_until


@pytest.mark.promise("P7")
async def test_service_notice_reaches_everyone_and_marketing_only_who_opted_in(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dms = {}
    for user, choice in ((owner, "on"), (member, "off")):
        dm = await user.create_dm(bot)
        await user.wait_for_notice(dm, "Send help", sender=bot)
        await user.send_text(dm, f"marketing {choice}")
        await user.wait_for_notice(dm, "product news", sender=bot)
        dms[user.user_id] = dm
    await member.send_text(dms[member.user_id], "marketing maybe")
    await member.wait_for_notice(dms[member.user_id], "You are opted out now", sender=bot)

    api = Api(bridge, http)
    status, report = await api.call(
        "POST", "/notices", json={"kind": "marketing", "text": "Try our new boards", "team_id": team.id}
    )
    assert (status, report) == (200, {"delivered": 1, "skipped_opted_out": 1})
    await owner.wait_for_notice(dms[owner.user_id], "News from Clutto: Try our new boards", sender=bot)

    status, report = await api.call("POST", "/notices", json={"kind": "service", "text": "Security update tonight"})
    assert (status, report) == (200, {"delivered": 2, "skipped_opted_out": 0})
    await member.wait_for_notice(dms[member.user_id], "Service notice: Security update tonight", sender=bot)
    bodies = [e["content"].get("body", "") for e in await member.messages(dms[member.user_id])]
    assert not any("Try our new boards" in b for b in bodies)

    # Opting in later takes effect at the next send.
    await member.send_text(dms[member.user_id], "marketing on")
    await member.wait_for_notice(dms[member.user_id], "You will receive product news", sender=bot)
    status, report = await api.call("POST", "/notices", json={"kind": "marketing", "text": "Second news"})
    assert report == {"delivered": 2, "skipped_opted_out": 0}
    await member.wait_for_notice(dms[member.user_id], "Second news", sender=bot)

    as_member = await openid_api(bridge, http, member)
    status, body = await as_member.call("POST", "/notices", json={"kind": "service", "text": "spoofed"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("POST", "/notices", json={"kind": "spam", "text": "x"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("POST", "/notices", json={"kind": "service", "text": "x", "team_id": "tnope"})
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_a_user_who_leaves_the_chat_with_the_bot_gets_a_new_one(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    user = await new_user("leaver")
    dm = await user.create_dm(bot)
    await user.wait_for_notice(dm, "Send help", sender=bot)
    await user.request("POST", f"/v3/rooms/{quote(dm)}/leave", {})

    async def forgotten() -> bool:
        return await bridge.management_rooms.room_of(user.user_id) is None

    await wait_until(forgotten, what="the left chat to be forgotten")
    await bridge.notices.tell(user.user_id, "Security update tonight")
    new_dm = await bridge.management_rooms.room_of(user.user_id)
    assert new_dm != dm
    await user.wait_for_invites({new_dm})
    await user.join(new_dm)
    await user.wait_for_notice(new_dm, "Security update tonight", sender=bot)
