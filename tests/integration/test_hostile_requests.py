"""Requests meant to break the bridge's port get a clear 4xx, never a 500, and are still
recorded as policy.collection says (issue 23, item 9): JSON nested a thousand levels deep, a
NUL byte in a download path, oversized or NUL-containing headers, a body sent too slowly."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from clutto_bridge.db.job import JobKind
from clutto_bridge.web.collection import UNMATCHED
from tests.integration.conftest import Bridges, unique
from tests.integration.matrix_client import wait_until

pytestmark = pytest.mark.integration


def _nested(depth: int) -> str:
    """A JSON object whose one field holds ``depth`` nested lists."""
    return '{"name": ' + "[" * depth + "]" * depth + "}"


def _endpoints(bridge: Bridge) -> list[tuple[str, str, str]]:
    """Every endpoint that reads a JSON body: method, path and the token it needs."""
    s = bridge.settings
    antispam = [
        ("POST", f"/_clutto/antispam/{name}", s.antispam.shared_secret)
        for name in ("user_may_join_room", "user_may_invite", "check_event_for_spam", "ping")
    ]
    return [
        ("POST", "/_clutto/v1/teams", s.provisioning.shared_secret),
        ("POST", "/_clutto/v1/notices", s.provisioning.shared_secret),
        *antispam,
    ]


async def _send(http: aiohttp.ClientSession, url: str, method: str, token: str, body: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with http.request(method, url, data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


# One database: refused before any handler or query runs (the test checks nothing was stored).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("depth", [900, 1000, 100_000])
async def test_deeply_nested_json_is_refused_as_bad_json_on_every_endpoint(
    bridge: Bridge, http: aiohttp.ClientSession, depth: int
) -> None:
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}"
    for method, path, token in _endpoints(bridge):
        status, body = await _send(http, base + path, method, token, _nested(depth))
        assert (status, body.get("errcode")) == (400, "M_BAD_JSON"), (path, status, body)
        assert "nest" in body["error"], body
    # Nothing reached the domain: no team was made of it.
    assert await bridge.teams.all() == []


async def test_a_transaction_nests_as_deep_as_the_homeserver_lets_an_event_nest(
    bridge: Bridge, http: aiohttp.ClientSession
) -> None:
    """A member can send an event nested about a thousand levels deep (Synapse's own parser
    allows it). Refusing its transaction would stall every later event, so it is accepted;
    only what no homeserver can send is refused."""
    url = f"http://127.0.0.1:{bridge.settings.appservice.port}/_matrix/app/v1/transactions/"
    token = bridge.settings.appservice.hs_token
    event = (
        '{"type": "m.room.message", "room_id": "!deep:localhost", "sender": "@u:localhost", '
        '"event_id": "$deep1", "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "x", '
        '"nest": ' + "[" * 1000 + "]" * 1000 + "}}"
    )
    status, _ = await _send(http, url + "deep-ok", "PUT", token, '{"events": [' + event + "]}")
    assert status == 200
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM inbox_event WHERE event_id='$deep1'") == 1
    status, body = await _send(http, url + "deep-no", "PUT", token, _nested(100_000))
    assert (status, body.get("errcode")) == (400, "M_BAD_JSON") and "nest" in body["error"], body


async def test_a_nul_byte_in_an_export_download_path_is_not_found(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, tmp_path
) -> None:
    bridge = await bridges.start(bridges.settings(export__directory=str(tmp_path / "exports")))
    owner = await new_user("owner")
    team = await bridge.teams.create(unique("Nul"), owner.user_id)
    job = await bridge.lifecycle.request_export(team, actor=None)
    job = await bridge.runner.wait(job.id, 60)
    assert job.kind == JobKind.EXPORT and job.state == "done", job
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/v1/teams/{team.id}/exports/{job.id}"
    auth = {"Authorization": f"Bearer {bridge.settings.provisioning.shared_secret}"}
    async with http.get(base + "/manifest.json", headers=auth) as resp:
        assert resp.status == 200  # the file is there: only the NUL makes it unknown
    for path in ("manifest.json%00", "manifest.json%00.txt", "%00"):
        async with http.get(aiohttp.client.URL(f"{base}/{path}", encoded=True), headers=auth) as resp:
            body = await resp.json(content_type=None)
            assert (resp.status, body.get("errcode")) == (404, "M_NOT_FOUND"), (path, resp.status, body)


async def _raw_request(port: int, head: bytes) -> bytes:
    """Send bytes as they are (aiohttp's client refuses what a hostile client sends) and
    return the status line of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 20)
    finally:
        writer.close()


async def test_requests_with_oversized_or_nul_headers_are_answered_and_recorded(
    bridges: Bridges, http: aiohttp.ClientSession
) -> None:
    settings = bridges.settings(policy__collection__user_agent="full", policy__collection__language="keep")
    bridge = await bridges.start(settings)
    port = bridge.settings.appservice.port
    requests = {
        "oversized": b"GET /_clutto/v1/teams HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"A" * 20_000 + b"\r\n\r\n",
        "nul": b"GET /_clutto/v1/teams HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\x00agent\r\n\r\n",
        "nul in language": b"GET /_clutto/v1/teams HTTP/1.1\r\nHost: x\r\nAccept-Language: de\x00\r\n\r\n",
        "long language": b"GET /_clutto/v1/teams HTTP/1.1\r\nHost: x\r\nAccept-Language: "
        + b"de," * 2000
        + b"\r\n\r\n",
    }
    for name, head in requests.items():
        line = await _raw_request(port, head + b"")
        assert line.startswith((b"HTTP/1.0 4", b"HTTP/1.1 4")), (name, line)

    async def recorded():
        return [r for r in await bridge.access.recent() if r.status >= 400]

    records = await wait_until(lambda: _at_least(recorded, len(requests)), what="an access record of each request")
    # Three that aiohttp could not parse (no route, no headers known), one that needed a token.
    assert sorted((r.status, r.route) for r in records) == [(400, UNMATCHED)] * 3 + [(401, "/_clutto/v1/teams")]
    long_language = next(r for r in records if r.status == 401)
    assert long_language.language == ("de," * 100)[:300].strip()  # cut as policy.collection says
    for record in records:
        for value in (record.user_agent, record.language):
            assert value is None or ("\x00" not in value and len(value) <= 300), record


async def _at_least(records, count: int):
    found = await records()
    return found if len(found) >= count else None


# One database: the body timeout is the HTTP server's; no query runs.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_body_sent_slower_than_the_limit_gets_408(bridges: Bridges) -> None:
    bridge = await bridges.start(bridges.settings(appservice__body_timeout="1s"))
    port = bridge.settings.appservice.port
    s = bridge.settings
    targets = [
        ("POST", "/_clutto/v1/teams", s.provisioning.shared_secret),
        ("POST", "/_clutto/antispam/check_event_for_spam", s.antispam.shared_secret),
        ("PUT", "/_matrix/app/v1/transactions/slow-1", s.appservice.hs_token),
    ]
    for method, path, token in targets:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
            )
            await writer.drain()
            answer = await _trickle_until_answered(reader, writer, deadline=time.monotonic() + 30)
            assert answer.startswith(b"HTTP/1.1 408"), (path, answer)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"connection: close" in head.lower()
            assert json.loads(body)["errcode"] == "IO.CLUTTO.BODY_TIMEOUT", body
            assert await _closed(reader), path
        finally:
            writer.close()


async def _trickle_until_answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float) -> bytes:
    """One byte of body now and then, as a slow client; the answer once the bridge gives one
    (read in one go: the bridge then closes a connection with unread bytes, a reset, which
    makes the reader drop what it had buffered)."""
    answer = asyncio.ensure_future(reader.read(65536))
    try:
        while time.monotonic() < deadline:
            done, _ = await asyncio.wait([answer], timeout=0.2)
            if done:
                return answer.result()
            try:
                writer.write(b" ")
                await writer.drain()
            except ConnectionError:  # answered and closed since: the answer is read next
                pass
        raise AssertionError("the bridge kept reading a trickled body for 30 s")
    finally:
        answer.cancel()


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the bridge closed the connection (an end of stream or a reset)."""
    try:
        return await asyncio.wait_for(reader.read(65536), 20) == b""
    except ConnectionResetError:
        return True
