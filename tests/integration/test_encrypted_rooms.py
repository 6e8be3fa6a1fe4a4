"""Members who encrypt talk to the bot as to anyone (P12, Customer Data on the homeserver):
in an encrypted chat with the bot, commands are read and answered, every answer encrypted.

The member's client is matrix-nio with real Olm/Megolm (tests/integration/e2ee_member.py),
as Element would be. What the homeserver stores is read raw: Synapse's database file and its
media store never hold the member's words, and neither does the bridge's database.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from nio import EncryptionError, MegolmEvent, RoomMessage

from clutto_bridge.app import Bridge
from tests.integration.conftest import Bridges, Homeserver, team_of_encrypting_owner, unique
from tests.integration.e2ee_member import EncryptedMember
from tests.integration.matrix_client import MatrixClient, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.promise("P12")]


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    """Files under ``folder`` whose raw bytes contain ``needle`` (a database, its WAL, media)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


# One database: the crypto store on PostgreSQL is exercised by the restart tests below and test_bot_device.py, on both databases.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_commands_in_an_encrypted_chat_are_read_and_answered_encrypted(
    bridge: Bridge, homeserver: Homeserver, encrypted_member, http, tmp_path: Path
) -> None:
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("alice")
    chat = await alice.create_encrypted_chat(bot)
    await alice.wait_for_decrypted(chat, "Send help", sender=bot)

    canary = f"canary{secrets.token_hex(6)}"
    await alice.send_text(chat, canary)  # an unknown command: the answer quotes it
    await alice.wait_for_decrypted(chat, canary, sender=bot)
    name = unique("Cipher")
    await alice.send_text(chat, f"team create {name}")
    await alice.wait_for_decrypted(chat, "Team created", sender=bot)
    assert [t.name for t in await bridge.teams.all()] == [name]

    # The homeserver holds ciphertext only: every message in the chat, the bot's included.
    plain = MatrixClient(homeserver.url, alice.user_id, alice.client.access_token, http)
    kinds = {(e["sender"], e["type"]) for e in await plain.messages(chat, limit=100) if "state_key" not in e}
    assert kinds and all(kind == "m.room.encrypted" for _, kind in kinds), kinds
    assert _files_holding(homeserver.synapse.folder, canary.encode()) == []
    if bridge.settings.appservice.database.startswith("sqlite:"):
        assert (
            _files_holding(Path(bridge.settings.appservice.database.removeprefix("sqlite:")).parent, canary.encode())
            == []
        )


# One database: encrypted team rooms on both databases: test_room_encryption.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_new_teams_rooms_are_encrypted_and_commands_there_are_answered_encrypted(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http
) -> None:
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("owner")
    team, rooms, plain = await team_of_encrypting_owner(bridge, alice, homeserver, http)
    week = 7 * 86_400_000
    for room_id in rooms:
        assert await plain.state(room_id, "m.room.encryption") == {
            "algorithm": "m.megolm.v1.aes-sha2",
            "rotation_period_ms": min(week, bridge.teams.retention_ms(team)),
            "rotation_period_msgs": 100,
        }
    general = rooms[0]
    await alice.sync()
    await alice.send_text(general, "!clutto team info")
    await alice.wait_for_decrypted(general, "Space:", sender=bot)
    said = [e for e in await plain.messages(general, limit=100) if e["sender"] == bot and "state_key" not in e]
    assert said and {e["type"] for e in said} == {"m.room.encrypted"}


async def _raw_event(client: MatrixClient, room_id: str, event_id: str) -> dict:
    return await client.request("GET", f"/v3/rooms/{quote(room_id)}/event/{quote(event_id)}")


def _can_decrypt(member: EncryptedMember, room_id: str, raw: dict) -> bool:
    """Whether ``member``'s device holds the Megolm session of ``raw`` (an m.room.encrypted
    event, fetched by someone who may read it) and opens it with it."""
    event = MegolmEvent.from_dict(raw)
    assert isinstance(event, MegolmEvent), raw
    olm = member.client.olm
    if olm.inbound_group_store.get(room_id, event.sender_key, event.session_id) is None:
        return False
    try:
        olm.decrypt_megolm_event(event, room_id)
    except EncryptionError:
        return False
    return True


async def test_a_removed_members_new_device_gets_no_keys(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http
) -> None:
    """Key sharing follows the team: once removed, a member's devices, old or logged in
    afterwards, get no key for what the bot writes next; the members who remain read it."""
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    bot = bridge.settings.bot_mxid
    owner = await encrypted_member("owner")
    bob = await encrypted_member("bob")
    team = await bridge.teams.create(unique("Sealed"), owner=owner.user_id)
    await bridge.members.invite(team, bob.user_id, actor=owner.user_id)
    general = (await bridge.teams.view(team)).rooms[0].room_id
    for member in (owner, bob):
        plain = MatrixClient(homeserver.url, member.user_id, member.client.access_token, http)
        await plain.wait_for_invites({team.space_id, general})
        for room_id in (team.space_id, general):
            await plain.join(room_id)
    # Before the removal bob's device reads the bot: the keys went to it, so the check below can fail.
    await owner.send_text(general, "!clutto team info")
    before = await owner.wait_for_decrypted(general, "Space:", sender=bot)
    await bob.wait_for_decrypted(general, "Space:", sender=bot)
    owner_plain = MatrixClient(homeserver.url, owner.user_id, owner.client.access_token, http)
    assert _can_decrypt(bob, general, await _raw_event(owner_plain, general, before.event_id))

    await bridge.members.remove(team, bob.user_id, actor=owner.user_id)
    assert (await owner_plain.state(general, "m.room.member", bob.user_id))["membership"] == "leave"
    new_device = await encrypted_member("bob-new-device", account=bob.account)
    assert new_device.client.device_id != bob.client.device_id

    await owner.send_text(general, "!clutto team info")
    after = await wait_until(
        lambda: _newer_reply(owner, general, bot, "Space:", before.event_id), what="the bot's next reply, decrypted"
    )
    raw = await _raw_event(owner_plain, general, after.event_id)
    assert raw["type"] == "m.room.encrypted"
    for _ in range(3):  # whatever to-device messages were sent to bob's devices have arrived
        await new_device.sync()
        await bob.sync()
    assert not _can_decrypt(new_device, general, raw)
    assert not _can_decrypt(bob, general, raw)


async def _newer_reply(member: EncryptedMember, room_id: str, sender: str, contains: str, than: str) -> Any:
    """A decrypted message from ``sender`` containing ``contains`` that came after event ``than``."""
    await member.sync(timeout_ms=500)
    events = member.said_by(room_id, sender)
    ids = [e.event_id for e in events]
    later = events[ids.index(than) + 1 :] if than in ids else []
    return next(
        (
            e
            for e in later
            if isinstance(e, RoomMessage) and not isinstance(e, MegolmEvent) and contains in getattr(e, "body", "")
        ),
        None,
    )


async def _greeted_in_encrypted_chat(bridges: Bridges, encrypted_member):
    """A bridge under policy.encryption default and a member greeted in an encrypted chat with it."""
    settings = bridges.settings(policy__encryption="default")
    bridge = await bridges.start(settings)
    alice = await encrypted_member("alice")
    chat = await alice.create_encrypted_chat(bridge.settings.bot_mxid)
    await alice.wait_for_decrypted(chat, "Send help", sender=bridge.settings.bot_mxid)
    return settings, bridge, alice, chat


async def test_the_bot_decrypts_after_a_restart_what_was_sent_while_it_was_down(
    bridges: Bridges, homeserver: Homeserver, encrypted_member
) -> None:
    """A command sent while the bridge is stopped waits on the homeserver (as for any stopped
    appservice); the restarted bot opens it with the room key its store kept and answers encrypted.

    The key came before the stop: Synapse 1.16x drops the to-device messages (room keys) of
    transactions an appservice did not take, so a key sent while the bot is down reaches it only
    when the member's client answers the bot's key request (docs/e2ee.md)."""
    settings, bridge, alice, chat = await _greeted_in_encrypted_chat(bridges, encrypted_member)
    bot = bridge.settings.bot_mxid
    await alice.send_text(chat, "help")
    await alice.wait_for_decrypted(chat, "team create", sender=bot)
    device = bridge.device.device_id

    front = homeserver.front
    front.down = True
    try:
        await bridges.stop(bridge)
        name = unique("Restarted")
        await alice.send_text(chat, f"team create {name}")
        bridge = await bridges.start(settings)
    finally:
        front.down = False
    assert bridge.device.device_id == device
    await alice.wait_for_decrypted(chat, "Team created", sender=bot, timeout=90)
    assert [t.name for t in await bridge.teams.all()] == [name]


async def test_a_room_key_sent_while_the_bot_was_down_comes_back_through_a_key_request(
    bridges: Bridges, homeserver: Homeserver, encrypted_member
) -> None:
    """The member's first message (with a new room key) is sent while the bridge is stopped.
    Synapse keeps the message but not the key (to-device messages of an appservice that was
    down are dropped); the restarted bot says it cannot read it yet, asks the member's device
    for the key (which answers as Element does) and then answers the command encrypted."""
    settings, bridge, alice, chat = await _greeted_in_encrypted_chat(bridges, encrypted_member)
    bot = bridge.settings.bot_mxid

    front = homeserver.front
    front.down = True
    try:
        await bridges.stop(bridge)
        name = unique("Requested")
        await alice.send_text(chat, f"team create {name}")  # a new Megolm session: its key is lost
        bridge = await bridges.start(settings)
    finally:
        front.down = False
    await alice.wait_for_decrypted(chat, "Team created", sender=bot, timeout=90)
    assert [t.name for t in await bridge.teams.all()] == [name]
