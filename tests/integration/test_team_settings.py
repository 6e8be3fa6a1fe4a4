"""Team settings and deletion, from the Customer's client and through the API."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.helpers import Api, team_with_member
from tests.integration.matrix_client import MatrixError


async def test_rename_topic_and_avatar(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    new_name = unique("Renamed")
    await owner.send_text(general, f"!clutto team rename {new_name}")
    await owner.wait_for_notice(general, "Renamed", sender=bot)
    assert (await member.state(team.space_id, "m.room.name"))["name"] == new_name
    await member.send_text(general, "!clutto team rename Mine Now")
    await member.wait_for_notice(general, "Only the owner or an admin", sender=bot)

    api = Api(bridge, http)
    status, body = await api.call(
        "PATCH", f"/teams/{team.id}", json={"topic": "Where we ship", "avatar_url": "mxc://localhost/abcDEF123"}
    )
    assert status == 200 and body["name"] == new_name
    assert (await member.state(team.space_id, "m.room.topic"))["topic"] == "Where we ship"
    assert (await member.state(team.space_id, "m.room.avatar"))["url"] == "mxc://localhost/abcDEF123"

    other = await bridge.teams.create(unique("Other"), owner=owner.user_id)
    for change, errcode in (
        ({"name": other.name}, "IO.CLUTTO.TEAM_EXISTS"),
        ({"avatar_url": "https://example.com/a.png"}, "M_INVALID_PARAM"),
        ({"topic": "x" * 501}, "M_INVALID_PARAM"),
        ({"colour": "red"}, "M_INVALID_PARAM"),
    ):
        status, body = await api.call("PATCH", f"/teams/{team.id}", json=change)
        assert body["errcode"] == errcode, (change, body)
    assert (await bridge.teams.get(team.id)).name == new_name


@pytest.mark.promise("P9", "P14")
async def test_owner_deletes_team_and_it_is_gone_from_the_homeserver(bridge: Bridge, new_user, homeserver) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user, role="admin")
    await member.send_text(rooms[0], "hello before the end")
    dm = await owner.create_dm(bot)
    await owner.wait_for_notice(dm, "Send help", sender=bot)

    await member.send_text(rooms[0], f"!clutto team delete {team.name}")
    await member.wait_for_notice(rooms[0], "Only the owner", sender=bot)
    await owner.send_text(dm, "team delete")
    await owner.wait_for_notice(dm, "cannot be undone", sender=bot)
    await owner.send_text(dm, "team delete Not The Name")
    await owner.wait_for_notice(dm, "confirm with the team's exact name", sender=bot)
    await owner.send_text(dm, f"team delete {team.name}")
    await owner.wait_for_notice(dm, "Deleted", sender=bot, timeout=60)

    assert await bridge.teams.all() == []
    admin = await homeserver.synapse.register_user(f"checker-{team.id}", admin=True)
    headers = {"Authorization": f"Bearer {admin.access_token}"}
    async with aiohttp.ClientSession() as session:
        for room_id in [team.space_id, *rooms]:
            async with session.get(
                f"{homeserver.url}/_synapse/admin/v1/rooms/{quote(room_id)}", headers=headers
            ) as resp:
                assert resp.status == 404, await resp.text()
    for room_id in [team.space_id, *rooms]:
        with pytest.raises(MatrixError):
            await member.join(room_id)
    [entry] = await bridge.audit.for_team(team.id, "team_deleted")
    assert entry.actor == owner.user_id and entry.detail["rooms"] == 3


async def test_api_delete_needs_confirmation(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Doomed"), owner=owner.user_id)
    api = Api(bridge, http)
    status, body = await api.call("DELETE", f"/teams/{team.id}", json={})
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = await api.call("DELETE", f"/teams/{team.id}", json={"confirm": "nope"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert (await bridge.teams.get(team.id)).state == "active"
    status, body = await api.call("DELETE", f"/teams/{team.id}", json={"confirm": team.name})
    assert (status, body) == (200, {"deleted": team.id})
    status, body = await api.call("GET", f"/teams/{team.id}")
    assert status == 404


async def test_retention_set_reads_mo_as_months_and_says_m_means_minutes(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await owner.send_text(general, "!clutto retention set 1m")
    refusal = await owner.wait_for_notice(general, "outside what the operator allows", sender=bot)
    assert "`m` means minutes; for months write `mo`, for example `1mo`." in refusal["content"]["body"]
    assert (await bridge.teams.get(team.id)).retention_seconds is None  # nothing changed
    await owner.send_text(general, "!clutto retention set 1mo")
    await owner.wait_for_notice(general, "now keeps messages for 30d", sender=bot)
    assert (await member.state(general, "m.room.retention"))["max_lifetime"] == 30 * 86400 * 1000
