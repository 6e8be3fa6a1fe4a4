"""A member's client with real end-to-end encryption, as Element would be: matrix-nio with
its ``e2e`` extra (Olm and Megolm from the vodozemac bindings), its keys in a store folder.

It logs in with a password, uploads its device keys, syncs, creates encrypted chats, sends
messages that the homeserver only ever sees as ``m.room.encrypted``, and reads the bot's
answers decrypted. Devices are trusted on first use (``ignore_unverified_devices``), as a
person who never verifies anyone would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessage
from nio.responses import LoginResponse, RoomCreateResponse, RoomSendResponse, SyncResponse

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
        await self.client.send_to_device_messages()

    async def create_encrypted_chat(self, other: str, *, direct: bool = True) -> str:
        answer = await self.client.room_create(
            invite=[other], is_direct=direct, initial_state=[ENCRYPTION],
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

    def said_by(self, room_id: str, sender: str) -> list[Any]:
        return [e for e in self.timeline.get(room_id, []) if e.sender == sender]

    async def wait_for_decrypted(self, room_id: str, contains: str, sender: str, timeout: float = 30.0) -> RoomMessage:
        """The first message from ``sender`` in ``room_id`` that decrypted and contains ``contains``."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.said_by(room_id, sender):
                if isinstance(event, RoomMessage) and not isinstance(event, MegolmEvent) \
                        and contains in getattr(event, "body", ""):
                    return event
            if time.monotonic() > deadline:
                seen = [(type(e).__name__, getattr(e, "body", None)) for e in self.said_by(room_id, sender)]
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {contains!r} from {sender}: {seen}")
            await self.sync(timeout_ms=1000)
