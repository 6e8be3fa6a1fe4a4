"""The Customer runs the team's people: roles, removal, ownership, new accounts."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.helpers import Api, power_level, team_with_member
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until


@pytest.mark.promise("P9")
async def test_role_change_updates_power_levels_everywhere(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await owner.send_text(general, f"!clutto role {member.user_id} admin")
    await owner.wait_for_notice(general, "is now admin", sender=bot)
    for room_id in [team.space_id, *rooms]:
        assert await power_level(member, room_id, member.user_id) == 50
    await owner.send_text(general, f"!clutto role {member.user_id} guest")
    await owner.wait_for_notice(general, "is now guest", sender=bot)
    for room_id in [team.space_id, *rooms]:
        assert await power_level(member, room_id, member.user_id) == 0
    # A member without rights is refused, and nothing changes.
    await member.send_text(general, f"!clutto role {owner.user_id} guest")
    await member.wait_for_notice(general, "Only the owner or an admin", sender=bot)
    await member.send_text(general, f"!clutto role {member.user_id} wizard")
    await member.wait_for_notice(general, "Unknown role", sender=bot)
    assert await power_level(owner, general, owner.user_id) == 100


@pytest.mark.promise("P1", "P9")
async def test_removed_member_is_kicked_with_reason_and_cannot_rejoin(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    await owner.send_text(rooms[0], f"!clutto remove {member.user_id}")
    await owner.wait_for_notice(rooms[0], f"Removed {member.user_id}", sender=bot)
    for room_id in [team.space_id, *rooms]:
        event = await owner.state(room_id, "m.room.member", member.user_id)
        assert event["membership"] == "leave"
        assert "Removed from the team" in event["reason"]
    for room_id in [rooms[1], team.space_id]:
        with pytest.raises(MatrixError) as refused:
            await member.join(room_id)
        assert refused.value.status == 403
    await owner.send_text(rooms[0], f"!clutto remove {owner.user_id}")
    await owner.wait_for_notice(rooms[0], "owner cannot be removed", sender=bot)


@pytest.mark.promise("P9")
async def test_ownership_transfer(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    outsider = await new_user("outsider")
    general = rooms[0]
    await member.send_text(general, f"!clutto transfer {member.user_id}")
    await member.wait_for_notice(general, "Only the owner", sender=bot)
    await owner.send_text(general, f"!clutto transfer {outsider.user_id}")
    await owner.wait_for_notice(general, "is not a member", sender=bot)
    await owner.send_text(general, f"!clutto transfer {owner.user_id}")
    await owner.wait_for_notice(general, "already owns", sender=bot)
    await owner.send_text(general, f"!clutto transfer {member.user_id}")
    await owner.wait_for_notice(general, "now owns", sender=bot)
    for room_id in [team.space_id, *rooms]:
        assert await power_level(owner, room_id, member.user_id) == 100
        assert await power_level(owner, room_id, owner.user_id) == 50
    # The API gives the same result, back to the first owner.
    api = Api(bridge, http)
    status, body = await api.call("POST", f"/teams/{team.id}/transfer", json={"user_id": owner.user_id})
    assert status == 200 and body["owner"] == owner.user_id
    roles = {m["user_id"]: m["role"] for m in body["members"]}
    assert roles == {owner.user_id: "owner", member.user_id: "admin"}
    assert await power_level(owner, general, owner.user_id) == 100


@pytest.mark.promise("P3", "P9")
async def test_operator_creates_account_then_deprovisions_it(
    bridge: Bridge, new_user, http: aiohttp.ClientSession, homeserver
) -> None:
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Accounts"), owner=owner.user_id)
    api = Api(bridge, http)
    username = f"new-{team.id}"
    password = "initial-pass-123"
    body = {"username": username, "email": f"{username}@corp.example", "password": password, "role": "member"}
    status, created = await api.call("POST", f"/teams/{team.id}/members", json=body)
    assert status == 201, created
    newcomer = await MatrixClient.login(homeserver.url, username, password, http)
    await newcomer.wait_for_invites({team.space_id})
    stored = await bridge.db.fetchrow("SELECT * FROM account WHERE user_id=$1", newcomer.user_id)
    assert stored["email"].startswith("enc1:") and username not in stored["email"]  # encrypted (P12)
    assert (await bridge.stores.accounts.get(newcomer.user_id)).email == f"{username}@corp.example"
    assert password not in repr(await bridge.db.fetch("SELECT * FROM account"))
    status, again = await api.call("POST", f"/teams/{team.id}/members", json=body)
    assert (status, again["errcode"]) == (409, "IO.CLUTTO.CONFLICT")

    status, removed = await api.call("DELETE", f"/teams/{team.id}/members/{quote(newcomer.user_id)}?deactivate=true")
    assert status == 200 and removed["membership"] == "removed"
    with pytest.raises(MatrixError) as refused:
        await MatrixClient.login(homeserver.url, username, password, http)
    assert refused.value.status in (401, 403)
    # An account Clutto did not create is never deactivated.
    status, _ = await api.call("POST", f"/teams/{team.id}/members", json={"user_id": (await new_user("x")).user_id})
    assert status == 201


@pytest.mark.promise("P9", "P14")
async def test_power_levels_changed_by_hand_are_put_back(bridge: Bridge, new_user) -> None:
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    levels = await owner.state(general, "m.room.power_levels")
    levels["users"][member.user_id] = 100
    levels["events_default"] = 50
    await owner.request("PUT", f"/v3/rooms/{quote(general)}/state/m.room.power_levels/", levels)

    async def restored() -> bool:
        now = await owner.state(general, "m.room.power_levels")
        return member.user_id not in now["users"] and now["events_default"] == 0

    await wait_until(restored, what="the bridge to put the power levels back")

    async def recorded() -> list:  # the record follows the corrected event
        return await bridge.audit.for_team(team.id, "power_levels_reverted")

    entries = await wait_until(recorded, what="the revert to be recorded")
    assert entries[-1].actor == owner.user_id and entries[-1].target == general


async def test_declined_invite_is_recorded(bridge: Bridge, new_user) -> None:
    owner = await new_user("owner")
    invitee = await new_user("invitee")
    team = await bridge.teams.create(unique("Declined"), owner=owner.user_id)
    await bridge.members.invite(team, invitee.user_id, actor=owner.user_id)
    await invitee.wait_for_invites({team.space_id})
    await invitee.request("POST", f"/v3/rooms/{quote(team.space_id)}/leave", {})

    async def declined() -> bool:
        view = await bridge.teams.view(team)
        return any(m.user_id == invitee.user_id and m.membership == "declined" for m in view.members)

    await wait_until(declined, what="the decline to be recorded")
    entries = await bridge.audit.for_team(team.id, "invite_declined")
    assert [e.target for e in entries] == [invitee.user_id]
