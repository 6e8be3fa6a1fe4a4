"""A Matrix user as a client sees the homeserver: plain client-server API calls over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.15)


class MatrixError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


class MatrixClient:
    def __init__(self, base_url: str, user_id: str, access_token: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.token = access_token
        self.session = session

    @classmethod
    async def login(cls, base_url: str, user: str, password: str, session: aiohttp.ClientSession) -> MatrixClient:
        body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
        async with session.post(f"{base_url}/_matrix/client/v3/login", json=body) as resp:
            data = await resp.json()
            if resp.status != 200:
                raise MatrixError(resp.status, data)
        return cls(base_url, data["user_id"], data["access_token"], session)

    async def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        url = f"{self.base_url}/_matrix/client{path}"
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(method, url, json=body, params=params or None, headers=headers) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise MatrixError(resp.status, data)
            return data

    async def create_dm(self, other: str) -> str:
        data = await self.request(
            "POST", "/v3/createRoom", {"invite": [other], "is_direct": True, "preset": "trusted_private_chat"}
        )
        return data["room_id"]

    async def send_text(self, room_id: str, text: str) -> str:
        txn = uuid.uuid4().hex
        data = await self.request(
            "PUT", f"/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}", {"msgtype": "m.text", "body": text}
        )
        return data["event_id"]

    async def messages(self, room_id: str, limit: int = 50) -> list[dict]:
        """Newest first, as the client's timeline API returns them."""
        data = await self.request("GET", f"/v3/rooms/{quote(room_id)}/messages", dir="b", limit=str(limit))
        return data["chunk"]

    async def wait_for_notice(self, room_id: str, contains: str, sender: str, timeout: float = 30.0) -> dict:
        async def find() -> dict | None:
            for event in await self.messages(room_id):
                body = event.get("content", {}).get("body", "")
                if event["type"] == "m.room.message" and event["sender"] == sender and contains in body:
                    return event
            return None

        return await wait_until(find, timeout, f"a message containing {contains!r} in {room_id}")

    async def joined_members(self, room_id: str) -> set[str]:
        data = await self.request("GET", f"/v3/rooms/{quote(room_id)}/joined_members")
        return set(data["joined"])

    async def invited_rooms(self) -> set[str]:
        data = await self.request("GET", "/v3/sync", timeout="0")
        return set(data.get("rooms", {}).get("invite", {}))

    async def wait_for_invites(self, rooms: set[str], timeout: float = 20.0) -> None:
        async def invited() -> bool:
            return rooms <= await self.invited_rooms()

        await wait_until(invited, timeout, f"invites of {self.user_id} to {sorted(rooms)}")

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/v3/join/{quote(room_id)}", {})

    async def hierarchy(self, space_id: str) -> list[dict]:
        data = await self.request("GET", f"/v1/rooms/{quote(space_id)}/hierarchy")
        return data["rooms"]

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict:
        return await self.request("GET", f"/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}")

    async def upload(self, data: bytes, content_type: str, filename: str = "file") -> str:
        url = f"{self.base_url}/_matrix/media/v3/upload"
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}
        async with self.session.post(url, data=data, params={"filename": filename}, headers=headers) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 400:
                raise MatrixError(resp.status, body)
            return body["content_uri"]

    async def download(self, mxc: str) -> bytes:
        server, media_id = mxc.removeprefix("mxc://").split("/")
        url = f"{self.base_url}/_matrix/client/v1/media/download/{server}/{media_id}"
        async with self.session.get(url, headers={"Authorization": f"Bearer {self.token}"}) as resp:
            if resp.status >= 400:
                raise MatrixError(resp.status, await resp.json(content_type=None))
            return await resp.read()

    async def send_file(self, room_id: str, mxc: str, name: str, mimetype: str, msgtype: str = "m.file") -> str:
        txn = uuid.uuid4().hex
        content = {"msgtype": msgtype, "body": name, "url": mxc, "info": {"mimetype": mimetype}}
        data = await self.request("PUT", f"/v3/rooms/{quote(room_id)}/send/m.room.message/{txn}", content)
        return data["event_id"]

    async def set_state(self, room_id: str, event_type: str, state_key: str, content: dict) -> str:
        data = await self.request("PUT", f"/v3/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}", content)
        return data["event_id"]
