"""Members and Customers use the provisioning API with their Matrix OpenID token."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.helpers import Api, openid_api, power_level, team_with_member


async def test_members_act_only_on_their_own_teams(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    stranger = await new_user("stranger")
    elsewhere = await bridge.teams.create(unique("Elsewhere"), owner=stranger.user_id)

    as_member = await openid_api(bridge, http, member)
    status, listing = await as_member.call("GET", "/teams")
    assert status == 200 and [t["id"] for t in listing["teams"]] == [team.id]
    status, body = await as_member.call("GET", f"/teams/{elsewhere.id}")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await as_member.call("POST", f"/teams/{team.id}/members", json={"user_id": stranger.user_id})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await as_member.call(
        "PUT", f"/teams/{team.id}/members/{quote(member.user_id)}", json={"role": "admin"}
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

    # The Customer does through the API what the bot command does.
    as_owner = await openid_api(bridge, http, owner)
    status, body = await as_owner.call(
        "PUT", f"/teams/{team.id}/members/{quote(member.user_id)}", json={"role": "admin"}
    )
    assert status == 200 and body["role"] == "admin"
    for room_id in [team.space_id, *rooms]:
        assert await power_level(member, room_id, member.user_id) == 50
    status, created = await as_owner.call("POST", "/teams", json={"name": unique("Own")})
    assert status == 201 and created["owner"] == owner.user_id
    status, body = await as_owner.call("POST", "/teams", json={"name": unique("Theirs"), "owner": stranger.user_id})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

    forged = Api(bridge, http)
    forged.auth = {"Authorization": "Bearer not-an-openid-token"}
    status, body = await forged.call("GET", "/teams")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
