"""What the integration tests share: a team with a member, the provisioning API as a script
or a member calls it, the bot's chat, jobs, files, and the bridge run as a process."""

from __future__ import annotations

import asyncio
import os
import re
import struct
import subprocess
import sys
import uuid
import zlib
from collections.abc import Callable
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from clutto_bridge.app import Bridge
from clutto_bridge.config import Settings
from clutto_bridge.db import create_database
from clutto_bridge.db.team import TeamStore
from clutto_bridge.demo.synapse import free_port
from tests.integration.conftest import Bridges, unique
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until
from tests.integration.openapi_check import ResponseChecker


async def team_with_member(bridge: Bridge, new_user, role: str = "member", *, accepted: tuple[str, ...] = ()):
    """A team of an owner and a member (``role``), both in its space and rooms: (owner, member,
    team, room IDs). ``accepted``: which of "owner" and "member" accepted the policy first."""
    owner = await new_user("owner")
    member = await new_user("member")
    for who, user in (("owner", owner), ("member", member)):
        if who in accepted:
            await bridge.onboarding.accept(user.user_id)
    team = await bridge.teams.create(unique("Team"), owner=owner.user_id)
    await bridge.members.invite(team, member.user_id, role, actor=owner.user_id)
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    for user in (owner, member):
        await user.wait_for_invites({team.space_id, *rooms})
        for room_id in [team.space_id, *rooms]:
            await user.join(room_id)
    return owner, member, team, rooms


async def power_level(client: MatrixClient, room_id: str, user_id: str) -> int:
    levels = await client.state(room_id, "m.room.power_levels")
    return levels.get("users", {}).get(user_id, levels.get("users_default", 0))


_checker: ResponseChecker | None = None


class Api:
    """The provisioning API as a script calls it; every answer is checked against the served OpenAPI document."""

    def __init__(self, bridge: Bridge, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1"
        self.auth = {"Authorization": f"Bearer {bridge.settings.provisioning.shared_secret}"}
        self.operator = dict(self.auth)
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        *,
        json=None,
        data=None,
        headers=None,
        encoded: bool = False,
    ) -> tuple[int, dict]:
        """``encoded``: send ``path`` exactly as written (``%2f`` and ``..`` included), not normalised."""
        url = URL(self.base + path, encoded=True) if encoded else self.base + path
        async with self.http.request(
            method, url, json=json, data=data, headers=self.auth if headers is None else headers
        ) as resp:
            status, body = resp.status, await resp.json(content_type=None)
        (await self.checker()).check(method, path, status, body)
        return status, body

    async def checker(self) -> ResponseChecker:
        global _checker
        if _checker is None:
            operator = getattr(self, "operator", self.auth)  # test_retention builds an Api without __init__
            async with self.http.get(self.base + "/openapi.json", headers=operator) as resp:
                assert resp.status == 200
                _checker = ResponseChecker(await resp.json())
        return _checker


async def openid_api(bridge: Bridge, http: aiohttp.ClientSession, user: MatrixClient) -> Api:
    token = await user.request("POST", f"/v3/user/{quote(user.user_id)}/openid/request_token", {})
    api = Api(bridge, http)
    api.auth = {"Authorization": f"Bearer {token['access_token']}"}
    return api


async def bot_chat(bridge: Bridge, user: MatrixClient) -> str:
    """The direct chat the bot opened with ``user``, joined as the user would."""

    async def opened() -> str | None:
        return await bridge.management_rooms.room_of(user.user_id)

    room_id = await wait_until(opened, what=f"the bot to open a chat with {user.user_id}")
    await user.wait_for_invites({room_id})
    await user.join(room_id)
    return room_id


DAY = 86_400_000


async def all_events(client: MatrixClient, room_id: str) -> list[dict]:
    """The whole timeline as the member's client reads it, oldest first."""
    events, token = [], None
    while True:
        params = {"dir": "f", "limit": "200"}
        if token:
            params["from"] = token
        data = await client.request("GET", f"/v3/rooms/{quote(room_id)}/messages", **params)
        events += data["chunk"]
        token = data.get("end")
        if not data["chunk"] or not token:
            return events


def stable(event: dict) -> dict:
    """An event without the parts that change as time passes (age)."""
    return {k: v for k, v in event.items() if k not in ("unsigned", "age")}


async def wait_for_job(api: Api, team_id: str, job_id: int, timeout: float = 120) -> dict:
    async def finished() -> dict | None:
        status, job = await api.call("GET", f"/teams/{team_id}/jobs/{job_id}")
        assert status == 200, job
        return job if job["state"] in ("done", "failed") else None

    return await wait_until(finished, timeout, f"job {job_id} to finish")


def vcards(*cards: tuple[str, str]) -> bytes:
    return "".join(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\n{line}\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n" for name, line in cards
    ).encode()


async def post_file(api: Api, path: str, data: bytes, kind: str = "text/vcard") -> tuple[int, dict]:
    return await api.call("POST", path, data=data, headers={**api.auth, "Content-Type": kind})


async def file_is_gone(member: MatrixClient, room_id: str, event_id: str, mxc: str) -> None:
    """What the member sees after the bot removed a file: the message redacted, the media 404."""

    async def redacted() -> bool:
        event = await member.request("GET", f"/v3/rooms/{quote(room_id)}/event/{quote(event_id)}")
        return event["content"] == {} and "redacted_because" in event.get("unsigned", {})

    await wait_until(redacted, what=f"the file {event_id} to be redacted")
    with pytest.raises(MatrixError) as gone:
        await member.download(mxc)
    assert gone.value.status == 404


async def send_vcard(member: MatrixClient, room_id: str, data: bytes, name: str = "contacts.vcf") -> tuple[str, str]:
    """Upload and post a vCard file as a client does; (event ID, mxc URI)."""
    mxc = await member.upload(data, "text/vcard", name)
    return await member.send_file(room_id, mxc, name, "text/vcard"), mxc


def png(extra: int = 0) -> bytes:
    """A valid 1x1 PNG, padded with an ancillary chunk to reach a size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    pad = chunk(b"teXt", b"c\x00" + b"x" * extra) if extra else b""
    return (
        b"\x89PNG\r\n\x1a\n" + header + pad + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    )


async def wait_until_serving(
    process: subprocess.Popen,
    http: aiohttp.ClientSession,
    url: str,
    what: str,
    output: Callable[[], str],
    timeout: float = 60,
) -> None:
    """Wait until ``url`` answers 200, failing with the process's ``output()`` if it exits first."""

    async def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the process exited early ({process.returncode}): {output()}")
        try:
            async with http.get(url) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    await wait_until(serving, timeout, what)


async def run_until_hook(
    bridges: Bridges, http: aiohttp.ClientSession, settings: Settings, hook: dict[str, str], act
) -> int:
    """Run the bridge as a process with ``hook`` armed, do ``act()``, and wait for the process
    to end at the hook; its exit code."""
    port = settings.appservice.port
    bridges.homeserver.front.target = f"http://127.0.0.1:{port}"
    log = bridges.folder / "bridge-process.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "-c", str(bridges.folder / "config.yaml")],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **hook, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_until_serving(
            process,
            http,
            f"http://127.0.0.1:{port}/_matrix/mau/ready",
            "the bridge process to be ready",
            lambda: log.read_text()[-3000:],
        )
        await act()
        return await asyncio.to_thread(process.wait, 60)
    finally:
        bridges.homeserver.front.target = None
        if process.poll() is None:
            process.kill()
            process.wait(10)


def create_team_in_a_new_chat(user: MatrixClient, bot: str, name: str):
    """What the member does while the hooked bridge runs: open a chat with the bot and send
    ``team create``. Returns the action and a list that receives the chat's room ID."""
    chat: list[str] = []

    async def command() -> None:
        chat.append(await user.create_dm(bot))
        await user.wait_for_notice(chat[0], "Send help", sender=bot)
        await user.send_text(chat[0], f"team create {name}")

    return command, chat


async def bot_says(user: MatrixClient, room_id: str, bot: str) -> list[str]:
    return [e["content"].get("body", "") for e in await user.messages(room_id, limit=100) if e["sender"] == bot]


async def unfinished_and_team(settings: Settings, name: str):
    db = create_database(settings.appservice.database, settings.appservice.database_opts)
    await db.start()
    try:
        unfinished = await db.fetchval("SELECT COUNT(*) FROM inbox_event WHERE done_at IS NULL")
        return unfinished, await TeamStore(db).get_by_name(name)
    finally:
        await db.stop()


LINK = re.compile(r"https?://\S+/signin\?token=[A-Za-z0-9_\-]+")


async def portal_bridge(bridges: Bridges) -> Bridge:
    """A bridge whose portal links point at its own port (the test front forwards no cookies)."""
    port = free_port()
    return await bridges.start(
        bridges.settings(
            appservice__port=port,
            portal__public_url=f"http://127.0.0.1:{port}/portal",
        )
    )


async def sign_in_link(bridge: Bridge, user: MatrixClient) -> tuple[str, str]:
    """Ask the bot for a link in the user's chat with it; the link read from the reply, and the chat."""
    dm = await bot_chat(bridge, user)
    await user.send_text(dm, "portal")
    reply = await user.wait_for_notice(dm, "sign-in link", sender=bridge.settings.bot_mxid)
    match = LINK.search(reply["content"]["body"])
    assert match, reply
    return match.group(0), dm


async def send(client: MatrixClient, room_id: str, body: str, relates_to: dict | None = None) -> str:
    content: dict = {"msgtype": "m.text", "body": body}
    if relates_to:
        content["m.relates_to"] = relates_to
    path = f"/v3/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}"
    return (await client.request("PUT", path, content))["event_id"]


async def reply_to(client: MatrixClient, room_id: str, event_id: str, sender: str) -> dict:
    """The message of ``sender`` that replies to ``event_id``, as the client's timeline shows it."""

    async def find() -> dict | None:
        for event in await client.messages(room_id):
            relation = event.get("content", {}).get("m.relates_to", {})
            if event["sender"] == sender and relation.get("m.in_reply_to", {}).get("event_id") == event_id:
                return event
        return None

    return await wait_until(find, 30, f"a reply to {event_id}")
