"""The bot is an E2EE device (P12, issue 24 phase 1): created by the appservice (MSC4190),
cross-signed by the bot's own identity, its room keys delivered in transactions (MSC2409),
its crypto store in the bridge database pickled with a key from the keyset, kept across restarts.
Checked as a member's client sees it (``/keys/query``) and in the raw store."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from pathlib import Path

import olm
import pytest
from mautrix.crypto import OlmAccount
from mautrix.crypto.signature import verify_signature_json

from clutto_bridge import key_operations
from clutto_bridge.app import Bridge
from clutto_bridge.crypto import KeysetFile
from clutto_bridge.matrix.crypto import pickle_key
from tests.integration.conftest import Bridges
from tests.integration.matrix_client import MatrixClient, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.promise("P12")]


async def keys_of_bot(member: MatrixClient, bot: str) -> dict:
    return await member.request("POST", "/v3/keys/query", {"device_keys": {bot: []}})


def only_key(cross_signing_key: dict) -> str:
    (key,) = cross_signing_key["keys"].values()
    return key


def assert_cross_signed(found: dict, bot: str, device_id: str) -> dict:
    """The device is signed by the bot's self-signing key, which its master key signed."""
    device = found["device_keys"][bot][device_id]
    master, ssk = only_key(found["master_keys"][bot]), only_key(found["self_signing_keys"][bot])
    assert verify_signature_json(found["self_signing_keys"][bot], bot, master, master)
    assert verify_signature_json(device, bot, ssk, ssk)
    return device


async def raw_account_pickle(bridge: Bridge) -> bytes:
    row = await bridge.db.fetchrow("SELECT account FROM crypto_account WHERE account_id=$1", bridge.appservice.bot_mxid)
    return bytes(row["account"])


async def test_a_member_sees_the_bot_as_a_cross_signed_device_with_keys(bridge: Bridge, new_user) -> None:
    member = await new_user("member")
    bot, device_id = bridge.appservice.bot_mxid, bridge.device.device_id
    assert device_id
    found = await keys_of_bot(member, bot)
    device = assert_cross_signed(found, bot, device_id)
    assert {"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"} <= set(device["algorithms"])
    assert device["keys"][f"ed25519:{device_id}"] == bridge.device.machine.account.signing_key
    assert device["keys"][f"curve25519:{device_id}"] == bridge.device.machine.account.identity_key
    # Its one-time keys are on the homeserver: a member's client can start an Olm session with it.
    claimed = await member.request("POST", "/v3/keys/claim", {"one_time_keys": {bot: {device_id: "signed_curve25519"}}})
    (otk,) = claimed["one_time_keys"][bot][device_id].values()
    assert verify_signature_json(otk, bot, device_id, bridge.device.machine.account.signing_key)


async def test_a_room_key_sent_to_the_bot_reaches_its_store_through_the_transactions(bridge: Bridge, new_user) -> None:
    """A member's device shares a Megolm session with the bot (to-device, Olm-encrypted): it
    arrives in an appservice transaction and the bot's store holds it."""
    member = await new_user("member")
    bot, device_id = bridge.appservice.bot_mxid, bridge.device.device_id
    room_id = (
        await member.request(
            "POST",
            "/v3/createRoom",
            {
                "preset": "private_chat",
                "initial_state": [
                    {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
                ],
            },
        )
    )["room_id"]
    claimed = await member.request("POST", "/v3/keys/claim", {"one_time_keys": {bot: {device_id: "signed_curve25519"}}})
    (otk,) = claimed["one_time_keys"][bot][device_id].values()
    account = bridge.device.machine.account
    sender = olm.Account()
    session = olm.OutboundSession(sender, account.identity_key, otk["key"])
    megolm = olm.OutboundGroupSession()
    payload = {
        "type": "m.room_key",
        "sender": member.user_id,
        "sender_device": "MEMBERDEVICE",
        "keys": {"ed25519": sender.identity_keys["ed25519"]},
        "recipient": bot,
        "recipient_keys": {"ed25519": account.signing_key},
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": room_id,
            "session_id": megolm.id,
            "session_key": megolm.session_key,
        },
    }
    message = session.encrypt(json.dumps(payload))
    content = {
        "algorithm": "m.olm.v1.curve25519-aes-sha2",
        "sender_key": sender.identity_keys["curve25519"],
        "ciphertext": {account.identity_key: {"type": message.message_type, "body": message.ciphertext}},
    }
    await member.request(
        "PUT", f"/v3/sendToDevice/m.room.encrypted/{secrets.token_hex(8)}", {"messages": {bot: {device_id: content}}}
    )
    store = bridge.device.machine.crypto_store
    stored = await wait_until(
        lambda: store.get_group_session(room_id, megolm.id), what="the room key in the bot's store"
    )
    assert stored.sender_key == sender.identity_keys["curve25519"]


async def test_the_bot_keeps_its_device_and_identity_across_a_restart(bridges: Bridges, new_user) -> None:
    member = await new_user("member")
    bridge = await bridges.start()
    bot, device_id = bridge.appservice.bot_mxid, bridge.device.device_id
    before = await keys_of_bot(member, bot)
    await bridges.stop(bridge)
    again = await bridges.start()
    assert again.device.device_id == device_id
    after = await keys_of_bot(member, bot)
    assert after["device_keys"][bot][device_id]["keys"] == before["device_keys"][bot][device_id]["keys"]
    assert after["master_keys"][bot] == before["master_keys"][bot]
    assert_cross_signed(after, bot, device_id)


async def test_the_store_is_pickled_with_a_key_from_the_keyset_and_repickled_after_a_rotation(
    bridges: Bridges, new_user, tmp_path: Path
) -> None:
    # A keyset of this test's own, with the session's recovery key (the bot's identity stays).
    keyset_path = tmp_path / "keyset.json"
    shutil.copy(bridges.settings().keyset_path, keyset_path)
    keyset_path.chmod(0o600)
    settings = bridges.settings(security__keyset=str(keyset_path))
    file = KeysetFile(keyset_path)
    first = file.load()
    bridge = await bridges.start(settings)
    device_id = bridge.device.device_id
    pickled = await raw_account_pickle(bridge)
    OlmAccount.from_pickle(pickled, pickle_key(first, first.primary), shared=True)
    other = KeysetFile(tmp_path / "other.json").create(0)
    for wrong in ("mautrix.bridge.e2ee", pickle_key(other, other.primary)):
        with pytest.raises(olm.OlmAccountError):
            OlmAccount.from_pickle(pickled, wrong, shared=True)
    await bridges.stop(bridge)

    rotated = first.rotated(1)
    file.save(rotated)
    with pytest.raises(key_operations.KeysError, match="crypto store"):
        await asyncio.to_thread(key_operations.retire, settings, first.primary)
    bridge = await bridges.start(settings)
    assert bridge.device.device_id == device_id
    pickled = await raw_account_pickle(bridge)
    OlmAccount.from_pickle(pickled, pickle_key(rotated, rotated.primary), shared=True)
    with pytest.raises(olm.OlmAccountError):
        OlmAccount.from_pickle(pickled, pickle_key(first, first.primary), shared=True)
    assert await bridge.db.fetchval("SELECT key_id FROM crypto_pickle_key") == rotated.primary
    member = await new_user("member")
    assert_cross_signed(await keys_of_bot(member, bridge.appservice.bot_mxid), bridge.appservice.bot_mxid, device_id)
