"""Members who encrypt talk to the bot as to anyone (P12, Customer Data on the homeserver):
in an encrypted chat with the bot, commands are read and answered, every answer encrypted.

The member's client is matrix-nio with real Olm/Megolm (tests/integration/e2ee_member.py),
as Element would be. What the homeserver stores is read raw: Synapse's database file and its
media store never hold the member's words, and neither does the bridge's database.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from clutto_bridge.app import Bridge
from tests.integration.conftest import Bridges, Homeserver, unique
from tests.integration.e2ee_member import EncryptedMember
from tests.integration.matrix_client import MatrixClient

pytestmark = [pytest.mark.integration, pytest.mark.promise("P12")]


@pytest.fixture
async def encrypted_member(homeserver: Homeserver, tmp_path: Path):
    made: list[EncryptedMember] = []

    async def make(name: str = "member") -> EncryptedMember:
        account = await homeserver.synapse.register_user(f"{name}-{secrets.token_hex(4)}")
        member = await EncryptedMember.login(homeserver.url, account.user_id, account.password, tmp_path / name)
        made.append(member)
        return member

    yield make
    for member in made:
        await member.close()


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    """Files under ``folder`` whose raw bytes contain ``needle`` (a database, its WAL, media)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


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
        assert _files_holding(Path(bridge.settings.appservice.database.removeprefix("sqlite:")).parent,
                              canary.encode()) == []


async def test_a_new_teams_rooms_are_encrypted_and_commands_there_are_answered_encrypted(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http
) -> None:
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("owner")
    team = await bridge.teams.create(unique("Sealed"), owner=alice.user_id)
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    plain = MatrixClient(homeserver.url, alice.user_id, alice.client.access_token, http)
    await plain.wait_for_invites({team.space_id, *rooms})
    for room_id in [team.space_id, *rooms]:
        await plain.join(room_id)
    week = 7 * 86_400_000
    for room_id in rooms:
        assert await plain.state(room_id, "m.room.encryption") == {
            "algorithm": "m.megolm.v1.aes-sha2", "rotation_period_ms": min(week, bridge.teams.retention_ms(team)),
            "rotation_period_msgs": 100,
        }
    general = rooms[0]
    await alice.sync()
    await alice.send_text(general, "!clutto team info")
    await alice.wait_for_decrypted(general, "Space:", sender=bot)
    said = [e for e in await plain.messages(general, limit=100) if e["sender"] == bot and "state_key" not in e]
    assert said and {e["type"] for e in said} == {"m.room.encrypted"}
