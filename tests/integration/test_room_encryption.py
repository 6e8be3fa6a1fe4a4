"""Team rooms that exist without encryption get it (P12, issue 24 items 1 and 6): under
``require`` on start, under ``default`` when an owner asks; the owner is told first, since it
cannot be undone. A room an owner adds to the team's space gets the team's rules, encryption
included, and commands there are answered encrypted."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from nio import RoomCreateResponse, RoomInviteResponse

from clutto_bridge.app import Bridge
from tests.integration.conftest import Bridges, Homeserver, unique
from tests.integration.e2ee_member import ENCRYPTION
from tests.integration.helpers import Api
from tests.integration.matrix_client import MatrixClient, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.promise("P12")]

UNDONE = "cannot be undone"


async def _team_without_encryption(bridges: Bridges, new_user) -> tuple[Bridge, MatrixClient, object, str, list[str]]:
    """A team made while ``policy.encryption`` was off, its owner in every room and in the chat with the bot."""
    bridge = await bridges.start(bridges.settings(policy__encryption="off"))
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Plain"), owner=owner.user_id)
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    chat = await bridge.notices.direct_room(owner.user_id)
    await owner.wait_for_invites({team.space_id, chat, *rooms})
    for room_id in (team.space_id, chat, *rooms):
        await owner.join(room_id)
    for room_id in rooms:
        assert await _encryption(owner, room_id) is None
    return bridge, owner, team, chat, rooms


async def _encryption(client: MatrixClient, room_id: str) -> dict | None:
    """The room's m.room.encryption event (with its timestamp), or None."""
    try:
        return await client.request("GET", f"/v3/rooms/{quote(room_id)}/state/m.room.encryption/", format="event")
    except Exception as e:  # MatrixError 404: no encryption
        if getattr(e, "status", None) == 404:
            return None
        raise


async def _notices(client: MatrixClient, chat: str, bot: str) -> list[dict]:
    return [
        e
        for e in await client.messages(chat, limit=100)
        if e["type"] == "m.room.message" and e["sender"] == bot and UNDONE in e["content"].get("body", "")
    ]


async def test_under_require_existing_rooms_are_encrypted_on_start_after_the_owner_is_told(
    bridges: Bridges, new_user
) -> None:
    bridge, owner, team, chat, rooms = await _team_without_encryption(bridges, new_user)
    bot = bridge.settings.bot_mxid
    await bridges.stop(bridge)

    bridge = await bridges.start(bridges.settings(policy__encryption="require"))
    notice = await owner.wait_for_notice(chat, UNDONE, sender=bot)
    assert "general, random" in notice["content"]["body"]
    week = 7 * 86_400_000
    for room_id in rooms:
        event = await _encryption(owner, room_id)
        assert event is not None, f"{room_id} was not encrypted"
        assert event["sender"] == bot
        assert event["content"] == {
            "algorithm": "m.megolm.v1.aes-sha2",
            "rotation_period_msgs": 100,
            "rotation_period_ms": min(week, bridge.teams.retention_ms(team)),
        }
        assert notice["origin_server_ts"] <= event["origin_server_ts"]  # told first
    audited = await bridge.stores.audit.for_team(team.id, "rooms_encrypted")
    assert [sorted(r.detail["rooms"]) for r in audited] == [sorted(rooms)]

    # Once per room: a second start finds every room encrypted and says nothing.
    await bridges.stop(bridge)
    await bridges.start(bridges.settings(policy__encryption="require"))
    assert len(await _notices(owner, chat, bot)) == 1


async def test_rooms_encrypt_under_default_encrypts_on_demand_and_says_so(bridges: Bridges, new_user, http) -> None:
    bridge, owner, team, chat, rooms = await _team_without_encryption(bridges, new_user)
    bot = bridge.settings.bot_mxid
    await bridges.stop(bridge)
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    assert all([await _encryption(owner, room_id) is None for room_id in rooms])  # default leaves them

    general = rooms[0]
    await owner.send_text(general, "!clutto rooms encrypt")
    notice = await owner.wait_for_notice(chat, UNDONE, sender=bot)
    assert f"{owner.user_id} asked for it" in notice["content"]["body"]

    async def answered() -> list[dict]:
        return [e for e in await owner.messages(general, limit=20) if e["sender"] == bot and "state_key" not in e]

    # The answer goes into the room the command came from, encrypted now: ciphertext only.
    said = await wait_until(answered, what="the answer to rooms encrypt")
    assert [e["type"] for e in said] == ["m.room.encrypted"]
    for room_id in rooms:
        assert await _encryption(owner, room_id) is not None

    # The API does the same, and a repeat changes nothing.
    status, body = await Api(bridge, http).call("POST", f"/teams/{team.id}/encryption")
    assert (status, body) == (200, {"encrypted": []})
    assert len(await _notices(owner, chat, bot)) == 1


async def test_an_encrypted_room_the_owner_adds_to_the_space_gets_the_teams_rules(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http
) -> None:
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("owner")
    team = await bridge.teams.create(unique("Added"), owner=alice.user_id)
    plain = MatrixClient(homeserver.url, alice.user_id, alice.client.access_token, http)
    await plain.wait_for_invites({team.space_id})
    await plain.join(team.space_id)

    # As Element's "Add existing room": a private encrypted room of hers, linked into the space.
    made = await alice.client.room_create(name="Side project", initial_state=[ENCRYPTION])
    assert isinstance(made, RoomCreateResponse), made
    room = made.room_id
    await plain.set_state(team.space_id, "m.space.child", room, {"via": [homeserver.synapse.server_name]})
    chat = await wait_until(lambda: bridge.management_rooms.room_of(alice.user_id), what="alice's chat with the bot")
    await alice.wait_for_decrypted(chat, "invite me", sender=bot)  # the bot could not join: it says how

    invited = await alice.client.room_invite(room, bot)
    assert isinstance(invited, RoomInviteResponse), invited
    adopted = await wait_until(lambda: bridge.stores.rooms.get(room), what="the added room recorded as a team room")
    assert (adopted.team_id, adopted.kind, adopted.name) == (team.id, "group", "Side project")
    assert await plain.state(room, "m.room.retention") == {"max_lifetime": bridge.teams.retention_ms(team)}
    levels = await plain.state(room, "m.room.power_levels")
    assert levels["users"][bot] == 100 and alice.user_id not in levels["users"]  # she created it (room v12)
    assert levels["invite"] == 100 and levels["events"]["m.room.join_rules"] == 100

    await alice.send_text(room, "!clutto team info")
    await alice.wait_for_decrypted(room, "Space:", sender=bot)
    said = [e for e in await plain.messages(room, limit=50) if e["sender"] == bot and "state_key" not in e]
    assert said and {e["type"] for e in said} == {"m.room.encrypted"}
