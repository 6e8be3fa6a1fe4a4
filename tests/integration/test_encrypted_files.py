"""What members send encrypted still reaches the bridge, and only what it keeps stays (P12 with
P6, P2 and P9): an encrypted vCard is imported and removed, an encrypted image becomes a
profile photo (a copy in the clear: profiles are public), and an owner's export holds what
members wrote in an encrypted team room decrypted, counting what the bot could not decrypt.

Members are matrix-nio clients with real Olm/Megolm (tests/integration/e2ee_member.py).
"""

from __future__ import annotations

import io
import json
import secrets
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest
from nio import RoomEncryptedFile
from nio.crypto import decrypt_attachment

from clutto_bridge.app import Bridge
from tests.integration.conftest import Bridges, Homeserver, team_of_encrypting_owner
from tests.integration.e2ee_member import EncryptedMember
from tests.integration.helpers import file_is_gone, png, vcards
from tests.integration.matrix_client import MatrixClient

pytestmark = [pytest.mark.integration, pytest.mark.promise("P12")]


async def _chat_with_bot(bridge: Bridge, member: EncryptedMember) -> str:
    """The encrypted chat the bot opens with the member (the bot made it, so it may redact there)."""
    chat = await bridge.notices.direct_room(member.user_id)
    await member.sync()  # joins the invite
    return chat


async def _file_from(member: EncryptedMember, room_id: str, sender: str, timeout: float = 30) -> RoomEncryptedFile:
    """The first encrypted attachment ``sender`` sent to ``room_id``, as the member's client decrypted it."""
    deadline = time.monotonic() + timeout
    while not (files := [e for e in member.said_by(room_id, sender) if isinstance(e, RoomEncryptedFile)]):
        assert time.monotonic() < deadline, f"no encrypted file from {sender} in {timeout:.0f}s"
        await member.sync(timeout_ms=1000)
    return files[0]


@pytest.mark.promise("P6", "P2")
async def test_an_encrypted_vcard_and_photo_sent_to_the_bot_are_taken_and_removed_and_mydata_comes_back_encrypted(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http
) -> None:
    bridge = await bridges.start(bridges.settings(policy__encryption="default"))
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("alice")
    chat = await _chat_with_bot(bridge, alice)
    plain = MatrixClient(homeserver.url, alice.user_id, alice.client.access_token, http)
    assert await plain.state(chat, "m.room.encryption")

    await alice.send_text(chat, "contacts allow")
    await alice.wait_for_decrypted(chat, "Contact import is allowed", sender=bot)
    card = vcards(("Ada Sealed", "EMAIL:ada-sealed@example.org"))
    event_id, mxc = await alice.send_encrypted_file(chat, card, "contacts.vcf", "text/vcard")
    reply = await alice.wait_for_decrypted(chat, "Imported 1 contact(s)", sender=bot)
    assert "I removed the file from this chat and deleted it from the homeserver" in reply.body
    await file_is_gone(plain, chat, event_id, mxc)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", alice.user_id) == 1

    # An encrypted image: the avatar is a plain copy of it, and the encrypted upload is gone.
    image = png(16)
    event_id, mxc = await alice.send_encrypted_file(chat, image, "me.png", "image/png", msgtype="m.image")
    reply = await alice.wait_for_decrypted(chat, "Your profile photo is set", sender=bot)
    assert "I removed the encrypted image from this chat" in reply.body
    photo = (await bridge.profiles.get(alice.user_id))["photo"]
    assert photo and photo != mxc and await plain.download(photo) == image
    await file_is_gone(plain, chat, event_id, mxc)

    # Her data comes back as a file here, encrypted like the chat: the homeserver holds only
    # its ciphertext (a plaintext chat gets no file, test_contacts.py).
    await alice.send_text(chat, "mydata export")
    await alice.wait_for_decrypted(chat, "Here is your data", sender=bot)
    attached = await _file_from(alice, chat, bot)
    ciphertext = await plain.download(attached.url)
    assert alice.user_id.encode() not in ciphertext and b"contact_import" not in ciphertext
    data = json.loads(decrypt_attachment(ciphertext, attached.key["k"], attached.hashes["sha256"], attached.iv))
    assert data["user_id"] == alice.user_id and data["contact_import_allowed"] is True


def _exported(folder: Path) -> tuple[dict, list[dict]]:
    """An export's manifest and every event of its room files."""
    events = [
        json.loads(line)
        for path in sorted((folder / "rooms").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return json.loads((folder / "manifest.json").read_text()), events


@pytest.mark.promise("P9")
async def test_an_owners_export_holds_an_encrypted_rooms_messages_and_files_decrypted(
    bridges: Bridges, homeserver: Homeserver, encrypted_member, http, tmp_path: Path
) -> None:
    bridge = await bridges.start(bridges.settings(policy__encryption="default", export__directory=str(tmp_path / "x")))
    bot = bridge.settings.bot_mxid
    alice = await encrypted_member("owner")
    team, rooms, plain = await team_of_encrypting_owner(bridge, alice, homeserver, http)
    general = rooms[0]
    canary = f"canary{secrets.token_hex(6)}"
    said = await alice.send_text(general, f"The {canary} sings in the mine")
    notes = f"minutes {canary}".encode()
    file_event, file_mxc = await alice.send_encrypted_file(general, notes, "minutes.txt", "text/plain")
    # The bot's answer shows it holds the key of alice's session, which her earlier messages share.
    await alice.send_text(general, "!clutto team info")
    await alice.wait_for_decrypted(general, "Space:", sender=bot)
    assert {e["type"] for e in await plain.messages(general, limit=100) if e["event_id"] in (said, file_event)} == {
        "m.room.encrypted"
    }

    async def export() -> tuple[Path, dict, list[dict]]:
        job = await bridge.lifecycle.request_export(team, actor=alice.user_id)
        job = await bridge.runner.wait(job.id, 60)
        assert job.state == "done", job
        folder = Path(job.progress["path"])
        return (folder, *_exported(folder))

    folder, manifest, events = await export()
    by_id = {e["event_id"]: e for e in events}
    assert by_id[said]["type"] == "m.room.message" and by_id[said]["decrypted"] is True
    assert by_id[said]["content"]["body"] == f"The {canary} sings in the mine"
    assert by_id[file_event]["content"]["file"]["url"] == file_mxc
    # The file is exported decrypted, under its mxc's name, and not as ciphertext.
    assert (folder / "media" / file_mxc.removeprefix("mxc://").replace("/", "_")).read_bytes() == notes
    assert manifest["undecryptable"] == {"count": 0, "event_ids": []}
    assert not [e for e in events if e["type"] == "m.room.encrypted"]

    # A message the bot has no key for (a Megolm session never shared with it) is kept as the
    # ciphertext it is, marked, counted and listed; never passed off as content.
    bogus = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnB" + "A" * 120,
        "sender_key": "x" * 43,
        "session_id": "y" * 43,
        "device_id": alice.client.device_id,
    }
    unread = (
        await plain.request("PUT", f"/v3/rooms/{quote(general)}/send/m.room.encrypted/{secrets.token_hex(8)}", bogus)
    )["event_id"]
    folder, manifest, events = await export()
    assert manifest["undecryptable"] == {"count": 1, "event_ids": [unread]}
    kept = next(e for e in events if e["event_id"] == unread)
    assert kept["type"] == "m.room.encrypted" and kept["decrypted"] is False and kept["content"] == bogus
    assert next(e for e in events if e["event_id"] == said)["content"]["body"].endswith("sings in the mine")

    # Asked in her encrypted chat with the bot, the owner gets the zip too: an encrypted
    # attachment, which the homeserver holds only as ciphertext.
    chat = await _chat_with_bot(bridge, alice)
    await alice.send_text(chat, "export")
    ready = await alice.wait_for_decrypted(chat, " is ready: ", sender=bot, timeout=60)
    assert "Here it is as a file too, encrypted like this chat" in ready.body
    attached = await _file_from(alice, chat, bot)
    ciphertext = await plain.download(attached.url)
    assert b"sings in the mine" not in ciphertext
    archive = zipfile.ZipFile(
        io.BytesIO(decrypt_attachment(ciphertext, attached.key["k"], attached.hashes["sha256"], attached.iv))
    )
    assert any(
        f"The {canary} sings in the mine".encode() in archive.read(n)
        for n in archive.namelist()
        if n.startswith("rooms/")
    )
