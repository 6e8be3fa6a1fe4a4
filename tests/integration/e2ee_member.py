"""A member's client with real end-to-end encryption, as Element would be: matrix-nio with
its ``e2e`` extra (Olm and Megolm from the vodozemac bindings), its keys in a store folder.

It logs in with a password, uploads its device keys, syncs, creates encrypted chats, sends
messages that the homeserver only ever sees as ``m.room.encrypted``, and reads the bot's
answers decrypted. Devices are trusted on first use (``ignore_unverified_devices``), as a
person who never verifies anyone would.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomKeyRequest, RoomMessage
from nio.responses import LoginResponse, RoomCreateResponse, RoomSendResponse, SyncResponse, UploadResponse

ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


class EncryptedMember:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.user_id = client.user_id
        # Decrypted (or undecryptable) timeline events seen so far, per room, in order.
        self.timeline: dict[str, list[Any]] = {}
        self.account: Any = None  # the account it logged in with (the test fixture sets it)

    @classmethod
    async def login(cls, homeserver: str, user: str, password: str, store: Path) -> EncryptedMember:
        store.mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
        client = AsyncClient(homeserver, user, store_path=str(store), config=config)
        answer = await client.login(password, device_name="e2ee test client")
        if not isinstance(answer, LoginResponse):
            raise AssertionError(f"login failed: {answer}")
        member = cls(client)
        if client.should_upload_keys:
            await client.keys_upload()
        await member.sync()
        return member

    async def close(self) -> None:
        await self.client.close()

    async def sync(self, timeout_ms: int = 0) -> None:
        answer = await self.client.sync(timeout=timeout_ms, full_state=False)
        if not isinstance(answer, SyncResponse):
            raise AssertionError(f"sync failed: {answer}")
        for room_id, room in answer.rooms.join.items():
            self.timeline.setdefault(room_id, []).extend(room.timeline.events)
        for room_id in answer.rooms.invite:
            await self.client.join(room_id)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.client.should_query_keys:
            await self.client.keys_query()
        if self.client.should_claim_keys:
            await self.client.keys_claim(self.client.get_users_for_key_claiming())
        for event in answer.to_device_events:
            if isinstance(event, RoomKeyRequest):
                self._answer_key_request(event)
        await self.client.send_to_device_messages()

    def _answer_key_request(self, request: RoomKeyRequest) -> None:
        """Send a room key again to another user's device that asks for it, if this device had
        sent it that key before: what Element (matrix-rust-sdk) does and matrix-nio does not
        (it answers only its own user's devices)."""
        olm = self.client.olm
        outbound = olm.outbound_group_sessions.get(request.room_id)
        asker = (request.sender, request.requesting_device_id)
        if (
            request.sender == self.user_id
            or outbound is None
            or outbound.id != request.session_id
            or asker not in outbound.users_shared_with
        ):
            return
        inbound = olm.inbound_group_store.get(request.room_id, request.sender_key, request.session_id)
        device = olm.device_store[request.sender].get(request.requesting_device_id)
        session = device and olm.session_store.get(device.curve25519)
        if inbound and session:
            olm.outgoing_to_device_messages.append(
                olm._encrypt_forwarding_key(request.room_id, inbound, session, device)
            )

    async def create_encrypted_chat(self, other: str, *, direct: bool = True) -> str:
        answer = await self.client.room_create(
            invite=[other],
            is_direct=direct,
            initial_state=[ENCRYPTION],
            preset=None,
        )
        if not isinstance(answer, RoomCreateResponse):
            raise AssertionError(f"room creation failed: {answer}")
        await self.sync()
        return answer.room_id

    async def send_text(self, room_id: str, text: str) -> str:
        await self.sync()
        answer = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}, ignore_unverified_devices=True
        )
        if not isinstance(answer, RoomSendResponse):
            raise AssertionError(f"send failed: {answer}")
        return answer.event_id

    async def send_encrypted_file(
        self, room_id: str, data: bytes, name: str, mimetype: str, msgtype: str = "m.file"
    ) -> tuple[str, str]:
        """An attachment as Element sends one into an encrypted room: encrypted before the upload
        (nio's ``upload(encrypt=True)``), its key only inside the encrypted event, no ``url``.
        Returns (event ID, mxc URI of the uploaded ciphertext)."""
        uploaded, keys = await self.client.upload(
            io.BytesIO(data), content_type="application/octet-stream", filename=name, encrypt=True, filesize=len(data)
        )
        if not isinstance(uploaded, UploadResponse) or not keys:
            raise AssertionError(f"upload failed: {uploaded}")
        content = {
            "msgtype": msgtype,
            "body": name,
            "file": {"url": uploaded.content_uri, **keys},
            "info": {"mimetype": mimetype, "size": len(data)},
        }
        await self.sync()
        answer = await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
        if not isinstance(answer, RoomSendResponse):
            raise AssertionError(f"send failed: {answer}")
        return answer.event_id, uploaded.content_uri

    def said_by(self, room_id: str, sender: str) -> list[Any]:
        return [e for e in self.timeline.get(room_id, []) if e.sender == sender]

    async def wait_for_decrypted(self, room_id: str, contains: str, sender: str, timeout: float = 30.0) -> RoomMessage:
        """The first message from ``sender`` in ``room_id`` that decrypted and contains ``contains``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.said_by(room_id, sender):
                if (
                    isinstance(event, RoomMessage)
                    and not isinstance(event, MegolmEvent)
                    and contains in getattr(event, "body", "")
                ):
                    return event
            if time.monotonic() > deadline:
                seen = [(type(e).__name__, getattr(e, "body", None)) for e in self.said_by(room_id, sender)]
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {contains!r} from {sender}: {seen}")
            await self.sync(timeout_ms=1000)
