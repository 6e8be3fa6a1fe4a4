"""The profile policy (P2) seen from members' clients: fields, display name, enforcement."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import bot_chat, openid_api, png, team_with_member
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until


async def name_in(viewer: MatrixClient, room_id: str, user_id: str) -> str | None:
    return (await viewer.state(room_id, "m.room.member", user_id)).get("displayname")


async def wait_for_name(viewer: MatrixClient, room_id: str, user_id: str, name: str) -> None:
    async def shown() -> bool:
        return await name_in(viewer, room_id, user_id) == name

    await wait_until(shown, what=f"{user_id} to be shown as {name!r} in {room_id}")


async def profile_field(viewer: MatrixClient, user_id: str, field: str) -> str | None:
    try:
        return (await viewer.request("GET", f"/v3/profile/{quote(user_id)}/{field}")).get(field)
    except MatrixError as e:
        assert e.status == 404, e
        return None


async def set_names(bridge: Bridge, member: MatrixClient, dm: str) -> None:
    bot = bridge.settings.bot_mxid
    await member.send_text(dm, "profile set first_name Ada")
    await member.wait_for_notice(dm, "first_name: Ada", sender=bot)
    await member.send_text(dm, "profile set last_name  Lovelace ")
    await member.wait_for_notice(dm, "last_name: Lovelace", sender=bot)


@pytest.mark.promise("P2")
async def test_profile_sets_the_name_teammates_see_and_a_different_name_is_reset(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    dm = await bot_chat(bridge, member)
    await member.wait_for_notice(dm, "Your profile still needs: first_name, last_name", sender=bot)
    # A custom profile field outside the policy, set by the member's client.
    await member.request("PUT", f"/v3/profile/{quote(member.user_id)}/m.tz", {"m.tz": "Europe/London"})

    await set_names(bridge, member, dm)
    await wait_for_name(owner, general, member.user_id, "Ada Lovelace")
    assert await profile_field(owner, member.user_id, "io.clutto.first_name") == "Ada"
    assert await profile_field(owner, member.user_id, "io.clutto.last_name") == "Lovelace"
    assert await profile_field(owner, member.user_id, "m.tz") is None
    await owner.send_text(general, f"!clutto profile show {member.user_id}")
    await owner.wait_for_notice(general, "first_name: Ada", sender=bot)

    # The member renames themselves in their client: the policy's name comes back.
    await member.request("PUT", f"/v3/profile/{quote(member.user_id)}/displayname", {"displayname": "Countess"})
    await member.wait_for_notice(dm, "your display name is 'Countess' but must be 'Ada Lovelace'", sender=bot)
    await wait_for_name(owner, general, member.user_id, "Ada Lovelace")
    # A per-room name too.
    event = await member.state(general, "m.room.member", member.user_id)
    await member.set_state(general, "m.room.member", member.user_id, {**event, "displayname": "Boss"})

    async def reset_after_boss() -> bool:
        names = [
            e["content"].get("displayname")
            for e in await owner.messages(general)
            if e["type"] == "m.room.member" and e.get("state_key") == member.user_id
        ]
        return "Boss" in names and names[0] == "Ada Lovelace"

    await wait_until(reset_after_boss, what="the per-room name to be put back")
    resets = list(await bridge.audit.for_team(team.id, "profile_reset"))
    assert resets and resets[0].target == member.user_id

    # A photo: a small PNG is taken, an oversized one and a non-image are refused.
    ok = await member.upload(png(), "image/png", "me.png")
    await member.send_text(dm, f"profile set photo {ok}")
    await member.wait_for_notice(dm, f"photo: {ok}", sender=bot)

    async def avatar_shown() -> bool:
        return (await owner.state(general, "m.room.member", member.user_id)).get("avatar_url") == ok

    await wait_until(avatar_shown, what="the profile photo as avatar")
    big = await member.upload(png(3 * 1024 * 1024), "image/png", "big.png")
    await member.send_text(dm, f"profile set photo {big}")
    await member.wait_for_notice(dm, "at most 2,097,152 are allowed", sender=bot)
    html = await member.upload(b"<html></html>", "text/html", "x.html")
    await member.send_text(dm, f"profile set photo {html}")
    await member.wait_for_notice(dm, "The photo is text/html", sender=bot)
    await member.send_text(dm, "profile set shoe_size 42")
    await member.wait_for_notice(dm, "Unknown profile field 'shoe_size'", sender=bot)
    await member.send_text(dm, "profile unset last_name")
    await member.wait_for_notice(dm, "The last_name is required by the policy", sender=bot)
    as_member = await openid_api(bridge, http, member)
    status, body = await as_member.call("GET", f"/users/{quote(member.user_id)}/profile")
    assert status == 200 and body["profile"] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "designation": None,
        "photo": ok,
    }

    # An image sent in the chat with the bot becomes the photo.
    other = await member.upload(png(10), "image/png", "other.png")
    await member.send_file(dm, other, "other.png", "image/png", msgtype="m.image")
    await member.wait_for_notice(dm, "Your profile photo is set", sender=bot)
    assert (await bridge.profiles.get(member.user_id))["photo"] == other


@pytest.mark.promise("P2")
async def test_profile_api_checks_input_and_who_may_see(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    stranger = await new_user("stranger")
    as_member = await openid_api(bridge, http, member)
    path = f"/users/{quote(member.user_id)}/profile"
    status, body = await as_member.call("PUT", path, json={"first_name": "Grace", "designation": "Rear Admiral"})
    assert status == 200 and body["profile"]["designation"] == "Rear Admiral" and body["missing"] == ["last_name"]
    for bad, message in (
        ({"first_name": "x" * 65}, "at most 64"),
        ({"nickname": "G"}, "Unknown profile field"),
        ({"photo": "https://example.com/me.png"}, "mxc://"),
        ({}, "Name a field"),
        ({"first_name": "G\u0007"}, "control"),
    ):
        status, body = await as_member.call("PUT", path, json=bad)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM") and message in body["error"], body
    assert (await bridge.profiles.get(member.user_id))["first_name"] == "Grace"

    as_owner = await openid_api(bridge, http, owner)
    status, body = await as_owner.call("GET", path)
    assert status == 200 and body["profile"]["first_name"] == "Grace"
    status, body = await as_owner.call("PUT", path, json={"first_name": "Not Grace"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    as_stranger = await openid_api(bridge, http, stranger)
    status, body = await as_stranger.call("GET", path)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


@pytest.mark.promise("P2")
async def test_warn_mode_tells_the_member_and_leaves_the_name(bridges: Bridges, new_user) -> None:
    bridge = await bridges.start(bridges.settings(policy__profile__enforce="warn"))
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    await set_names(bridge, member, dm)
    await wait_for_name(owner, rooms[0], member.user_id, "Ada Lovelace")
    await member.request("PUT", f"/v3/profile/{quote(member.user_id)}/displayname", {"displayname": "Countess"})
    await member.wait_for_notice(dm, "must be 'Ada Lovelace'. Please change it back", sender=bot)
    await wait_for_name(owner, rooms[0], member.user_id, "Countess")
    assert not await bridge.audit.for_team(team.id, "profile_reset")


@pytest.mark.promise("P2")
async def test_without_custom_profile_fields_the_profile_is_space_state(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bridge.profiles.custom_fields = False  # as on a homeserver without MSC4133
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    as_member = await openid_api(bridge, http, member)
    status, _ = await as_member.call(
        "PUT", f"/users/{quote(member.user_id)}/profile", json={"first_name": "Ada", "designation": "Analyst"}
    )
    assert status == 200
    state = await owner.state(team.space_id, "io.clutto.profile", f"_{member.user_id}")
    assert state == {"first_name": "Ada", "designation": "Analyst"}
    assert await profile_field(owner, member.user_id, "io.clutto.first_name") is None

    # Joining another team publishes it there; leaving a team takes it down there.
    other = await bridge.teams.create(unique("Other"), owner=owner.user_id)
    await bridge.members.invite(other, member.user_id, actor=owner.user_id)
    for user in (owner, member):
        await user.wait_for_invites({other.space_id})
        await user.join(other.space_id)

    async def published_in_other() -> bool:
        try:
            return await owner.state(other.space_id, "io.clutto.profile", f"_{member.user_id}") == state
        except MatrixError:
            return False

    await wait_until(published_in_other, what="the profile in the second team's space")
    await bridge.members.remove(team, member.user_id, actor=owner.user_id)

    async def taken_down() -> bool:
        return await owner.state(team.space_id, "io.clutto.profile", f"_{member.user_id}") == {}

    await wait_until(taken_down, what="the profile to leave the first team's space")
    assert await owner.state(other.space_id, "io.clutto.profile", f"_{member.user_id}") == state


@pytest.mark.promise("P2")
async def test_narrowing_the_policy_forgets_fields_no_longer_allowed(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start()
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    as_member = await openid_api(bridge, http, member)
    path = f"/users/{quote(member.user_id)}/profile"
    status, _ = await as_member.call("PUT", path, json={"first_name": "Ada", "last_name": "L", "designation": "CTO"})
    assert status == 200
    assert await profile_field(owner, member.user_id, "io.clutto.designation") == "CTO"
    await bridges.stop(bridge)

    narrow = bridges.settings(policy__profile__allowed=["first_name", "last_name"])
    bridge = await bridges.start(narrow)
    assert (await bridge.profiles.get(member.user_id))["designation"] is None
    as_member = await openid_api(bridge, http, member)
    status, body = await as_member.call("PUT", path, json={"designation": "CEO"})
    assert status == 400 and "not kept by this server's policy" in body["error"]
    status, body = await as_member.call("PUT", path, json={"last_name": "Lovelace"})
    assert status == 200 and body["profile"] == {"first_name": "Ada", "last_name": "Lovelace"}
    # Publishing again takes the field down from the homeserver profile too.
    assert await profile_field(owner, member.user_id, "io.clutto.designation") is None
