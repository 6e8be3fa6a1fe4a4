"""Keys follow retention (P11, P12): when a sweep removes a room's expired messages, the bot's
Megolm sessions that decrypt only those go from its crypto store, read here row by row in
mautrix's own table, so a copy of the bridge database decrypts nothing retention removed. A
session with messages inside the window stays, a legal hold keeps them all, no key of an
expired session goes out on a key request, and the trial purge takes the team's sessions.

The old messages are the bot's own Megolm ciphertext sent with the appservice ``ts`` parameter
(as test_retention.py does with plaintext), each batch under a session of its own.
"""

from __future__ import annotations

import aiohttp
import pytest
from mautrix.crypto import RejectKeyShare
from mautrix.types import (
    DeviceIdentity,
    EncryptionAlgorithm,
    EventType,
    IdentityKey,
    RequestedKeyInfo,
    RoomID,
    SigningKey,
    TrustState,
    UserID,
)

from clutto_bridge import operations
from clutto_bridge.app import Bridge
from clutto_bridge.db.job import JobKind
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import DAY, Api
from tests.integration.matrix_client import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.promise("P11", "P12")]


async def _encrypted_team(bridges: Bridges, new_user):
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    owner = await new_user("keys")
    team = await bridge.teams.create(unique("Keys"), owner=owner.user_id)
    general = (await bridge.teams.view(team)).rooms[0].room_id
    return bridge, owner, team, general


async def _send_session(bridge: Bridge, room_id: str, reader: str, timestamps: list[int]) -> str:
    """Messages from the bot under a new Megolm session of its own, at the given times; the session id."""

    async def readers() -> list[str]:
        return [reader]

    await bridge.device.machine.crypto_store.remove_outbound_group_session(RoomID(room_id))  # a new session
    session_id = None
    for i, ts in enumerate(timestamps):
        content = await bridge.device.encrypt(
            room_id, EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"message {i} at {ts}"}, readers
        )
        session_id = content.session_id
        await bridge.appservice.intent.send_message_event(room_id, EventType.ROOM_ENCRYPTED, content, timestamp=ts)
    return str(session_id)


async def _bot_sessions(bridge: Bridge, room_id: str) -> set[str]:
    """The sessions of the room in the bot's crypto store (mautrix's table, read raw)."""
    rows = await bridge.db.fetch(
        "SELECT session_id FROM crypto_megolm_inbound_session WHERE room_id=$1 AND session IS NOT NULL", room_id
    )
    return {r["session_id"] for r in rows}


async def _outbound(bridge: Bridge, room_id: str) -> str | None:
    """The session the bot sends with in the room, if any."""
    return await bridge.db.fetchval("SELECT session_id FROM crypto_megolm_outbound_session WHERE room_id=$1", room_id)


async def _indexed(bridge: Bridge, room_id: str, sessions: set[str]) -> None:
    async def seen() -> bool:
        rows = await bridge.db.fetch(
            "SELECT s.session_id FROM timeline_session s JOIN timeline_room r ON r.id = s.room WHERE r.room_id=$1",
            room_id,
        )
        return sessions <= {r["session_id"] for r in rows}

    await wait_until(seen, what="the index to note the sessions of the encrypted messages")


async def _sweep(bridge: Bridge, team) -> dict:
    job = await bridge.retention.request_sweep(team, actor=None)
    job = await bridge.runner.wait(job.id, 120)
    assert job.state == "done", job
    return job.progress


async def _key_request(bridge: Bridge, room_id: str, session_id: str) -> bool:
    """What the bot answers a key request of another device of its own, which mautrix's rule
    would serve: True (shared) or RejectKeyShare raised."""
    device = DeviceIdentity(
        user_id=UserID(bridge.settings.bot_mxid),
        device_id="ANOTHERDEVICE",
        identity_key=IdentityKey("x"),
        signing_key=SigningKey("y"),
        trust=TrustState.VERIFIED,
        deleted=False,
        name="",
    )
    request = RequestedKeyInfo(
        algorithm=EncryptionAlgorithm.MEGOLM_V1,
        room_id=RoomID(room_id),
        sender_key=IdentityKey(bridge.device.machine.account.identity_key),
        session_id=session_id,
    )
    return await bridge.device.machine.allow_key_share(device, request)


async def test_a_sweep_deletes_the_bots_keys_of_expired_messages_unless_held(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, capsys
) -> None:
    bridge, owner, team, general = await _encrypted_team(bridges, new_user)
    now = bridge.clock.now_ms()
    old = await _send_session(bridge, general, owner.user_id, [now - 40 * DAY, now - 39 * DAY])
    straddling = await _send_session(bridge, general, owner.user_id, [now - 31 * DAY, now - 29 * DAY])
    fresh = await _send_session(bridge, general, owner.user_id, [now - DAY, now])
    # Imported history: old messages after the window's start, out of a purge's reach (redacted),
    # under the session the bot still sends with.
    late = await _send_session(bridge, general, owner.user_id, [now - 38 * DAY])
    await _indexed(bridge, general, {old, straddling, fresh, late})
    assert await _bot_sessions(bridge, general) >= {old, straddling, fresh, late}
    assert await _outbound(bridge, general) == late
    await bridge.retention.set_lifetime(team, "30d", actor=None)

    # Before any sweep, no key of an expired message goes out on request; nor one of an unknown session.
    assert await _key_request(bridge, general, fresh) is True
    for session_id in (old, straddling, late, "unknownsession"):
        with pytest.raises(RejectKeyShare, match="past retention or unknown"):
            await _key_request(bridge, general, session_id)

    # A legal hold keeps the sessions as it keeps the messages.
    await bridge.retention.place_hold(team, general, "litigation", actor=None)
    progress = await _sweep(bridge, team)
    assert progress["held"] == [general] and progress["sessions_deleted"] == 0
    assert await _bot_sessions(bridge, general) >= {old, straddling, fresh, late}

    await bridge.retention.lift_hold(team, general, actor=None)
    progress = await _sweep(bridge, team)
    assert progress["sessions_deleted"] == 2
    left = await _bot_sessions(bridge, general)
    assert not {old, late} & left and {straddling, fresh} <= left
    assert await _outbound(bridge, general) is None  # the next message starts a new session
    assert await _sweep(bridge, team) and await _bot_sessions(bridge, general) == left  # a second sweep: nothing more

    # retention status names the sessions kept and deleted per room.
    status, body = await Api(bridge, http).call("GET", f"/teams/{team.id}/retention")
    assert status == 200
    rooms = {room["room_id"]: room for room in body["sessions"]}
    assert (rooms[general]["kept"], rooms[general]["deleted"]) == (len(left), 2)
    assert await operations.retention_status(operations.BridgeClient(bridge.settings), team.id) == 0
    assert f"{len(left)} kept, 2 deleted" in capsys.readouterr().out


async def test_the_trial_purge_deletes_the_teams_sessions(bridges: Bridges, new_user) -> None:
    bridge, owner, team, general = await _encrypted_team(bridges, new_user)
    now = bridge.clock.now_ms()
    session_id = await _send_session(bridge, general, owner.user_id, [now])
    await _indexed(bridge, general, {session_id})
    assert session_id in await _bot_sessions(bridge, general) and await _outbound(bridge, general) == session_id

    job = await bridge.runner.enqueue(JobKind.PURGE, team.id)
    job = await bridge.runner.wait(job.id, 120)
    assert job.state == "done", job
    assert await _bot_sessions(bridge, general) == set()
    assert await _outbound(bridge, general) is None
