"""Email, headers only (P16): mail to a team's address shows its allowlisted headers to the
team's members, and the body and attachments are found nowhere: not on the homeserver, not in
the bridge's database, not in the log, not in a temporary file."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import smtplib
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest

from clutto_bridge.app import Bridge
from clutto_bridge.demo.synapse import free_port
from tests.integration.conftest import Bridges
from tests.integration.helpers import Api, team_with_member
from tests.integration.matrix_client import wait_until


def _mail(to: str, canary: str) -> bytes:
    """A multipart message: headers to show (one an injection attempt), a header that is not
    on the allowlist, a body and an attachment, the last three carrying ``canary``."""
    attachment = base64.b64encode(f"attached {canary}".encode()).decode()
    return (
        "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n"
        f"To: {to}\r\n"
        "Cc: cc@example.org\r\n"
        "Subject: =?utf-8?q?Quarterly_<b>report</b>_<img_src=x>=0D=0AX-Injected:_yes?=\r\n"
        "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <q3-report@example.org>\r\n"
        f"X-Tracking: {canary}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="part"\r\n'
        "\r\n"
        "--part\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"The body says {canary}.\r\n"
        "--part\r\n"
        "Content-Type: text/plain\r\n"
        f'Content-Disposition: attachment; filename="{canary}.txt"\r\n'
        "\r\n"
        f"plain attachment {canary}\r\n"
        "--part\r\n"
        "Content-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="report.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{attachment}\r\n"
        "--part--\r\n"
    ).encode()


def _send(port: int, to: str, message: bytes) -> dict:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        return client.sendmail("sender@example.org", [to], message)


def _files_containing(folder: Path, needle: bytes, *, since: float | None = None) -> list[str]:
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            try:
                stat = path.stat()
                if since is not None and stat.st_mtime < since or stat.st_size > 50 * 1024 * 1024:
                    continue
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


async def _bridge_database_holds(database: str, needle: str) -> list[str]:
    """Where the bridge's database holds ``needle``: its SQLite files, or any PostgreSQL row."""
    if database.startswith("sqlite:"):
        path = Path(database.removeprefix("sqlite:"))
        return _files_containing(path.parent, needle.encode())
    conn = await asyncpg.connect(database)
    try:
        tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        assert "team_email" in tables
        return [
            t
            for t in tables
            if await conn.fetchval(f'SELECT COUNT(*) FROM "{t}" AS r WHERE strpos(r::text, $1) > 0', needle)
        ]
    finally:
        await conn.close()


async def _homeserver_events(bridges: Bridges, http: aiohttp.ClientSession, room_ids: list[str], who: str) -> str:
    """Every event of the rooms, as the homeserver's admin API returns them, as one text."""
    admin = await bridges.homeserver.synapse.register_user(f"{who}-{secrets.token_hex(3)}", admin=True)
    texts = []
    for room_id in room_ids:
        async with http.get(
            f"{bridges.homeserver.url}/_synapse/admin/v1/rooms/{quote(room_id)}/messages",
            params={"dir": "f", "limit": "1000"},
            headers={"Authorization": f"Bearer {admin.access_token}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            texts.append(await resp.text())
    return "\n".join(texts)


@pytest.fixture
def debug_log(tmp_path: Path):
    """The bridge's log at its most talkative (DEBUG), in a file, as an operator would keep it."""
    path = tmp_path / "bridge.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


@pytest.mark.promise("P16")
async def test_mail_shows_only_its_headers_in_the_email_room_and_the_body_is_found_nowhere(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, debug_log: Path
) -> None:
    started = time.time()
    bridge = await bridges.start(bridges.settings(email__enabled=True, email__port=free_port()))
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]

    await member.send_text(general, "!clutto email on")
    await member.wait_for_notice(general, "Only the owner or an admin", sender=bot)
    await owner.send_text(general, "!clutto email on")
    reply = await owner.wait_for_notice(general, "Email is on", sender=bot)
    address = (await bridge.email.status(team, actor=None)).address
    assert address and address in reply["content"]["body"]

    canary = f"canary-{secrets.token_hex(8)}"
    refused = await asyncio.to_thread(_send, bridge.settings.email.port, address, _mail(address, canary))
    assert refused == {}

    # The team's members find the new email room in the space, and the headers in it.
    room_id = await wait_until(lambda: _email_room(bridge, team), what="the email room to be created on the first mail")
    await member.wait_for_invites({room_id})
    await member.join(room_id)
    assert room_id in {r["room_id"] for r in await member.hierarchy(team.space_id)}
    notice = await member.wait_for_notice(room_id, "Email to", sender=bot)
    body, html = notice["content"]["body"], notice["content"]["formatted_body"]
    lines = body.splitlines()
    assert lines[0] == f"Email to {address} (headers only: the body and attachments were not kept)"
    assert lines[1:] == [
        "From: Jürgen Müller <juergen@example.org>",
        f"To: {address}",
        "Cc: cc@example.org",
        "Subject: Quarterly <b>report</b> <img src=x> X-Injected: yes",
        "Date: Wed, 25 Nov 2026 10:00:00 +0000",
        "Message-ID: <q3-report@example.org>",
    ]
    # Markup in a header is text: escaped in the HTML body, never an element.
    assert "Quarterly &lt;b&gt;report&lt;/b&gt; &lt;img src=x&gt; X-Injected: yes" in html
    assert "<img" not in html and "<b>report" not in html
    # The email room is a team room like the others: the team's retention applies to it.
    retention = await member.state(room_id, "m.room.retention")
    assert retention["max_lifetime"] == bridge.teams.retention_ms(team)
    # Shared with the room, so recorded in the audit log (P14), by count only.
    [posted] = await bridge.audit.for_team(team.id, "email_posted")
    assert (posted.target, posted.detail) == (room_id, {"headers": 6})

    await bridges.stop(bridge)  # the database files are complete once the bridge closed them
    # The searches below do find what is there: the shown headers, the team's address.
    assert "Quarterly" in await _homeserver_events(bridges, http, [room_id], "auditor")
    assert await _bridge_database_holds(bridges.database, address.split("@")[0]) != []
    encoded = base64.b64encode(f"attached {canary}".encode()).decode()
    for needle in (canary, encoded):
        events = await _homeserver_events(bridges, http, [team.space_id, *rooms, room_id], "auditor")
        assert needle not in events, "the homeserver's events"
        assert _files_containing(bridges.homeserver.synapse.folder, needle.encode()) == [], "the homeserver's files"
        assert await _bridge_database_holds(bridges.database, needle) == [], "the bridge's database"
        log = debug_log.read_text()
        assert needle not in log, "the bridge's log"
        assert _files_containing(Path(tempfile.gettempdir()), needle.encode(), since=started) == [], "temporary files"
    assert "Email for team" in log  # the log does say that mail came, without any of it


async def _email_room(bridge: Bridge, team) -> str | None:
    return (await bridge.email.status(team, actor=None)).room_id


@pytest.mark.promise("P16")
async def test_unknown_recipients_get_550_oversized_mail_552_and_a_switched_off_address_550(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start(
        bridges.settings(
            email__enabled=True,
            email__port=free_port(),
            email__max_size_kib=16,
            email__domain="mail.clutto.test",
        )
    )
    port = bridge.settings.email.port
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    api = Api(bridge, http)
    status, body = await api.call("GET", f"/teams/{team.id}/email")
    assert (status, body) == (200, {"enabled": False, "address": None, "room_id": None})
    status, body = await api.call("PUT", f"/teams/{team.id}/email", json={"enabled": True})
    assert status == 200 and body["enabled"] and body["address"].endswith("@mail.clutto.test")
    address = body["address"]

    for unknown in ("nobody@mail.clutto.test", address.replace("@", "x@"), address.split("@")[0] + "@elsewhere.test"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await asyncio.to_thread(_send, port, unknown, b"Subject: hi\r\n\r\nhello\r\n")
        [(code, _)] = refused.value.recipients.values()
        assert code == 550, unknown

    big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 400  # 31 KiB over a 16 KiB limit
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
        await asyncio.to_thread(_send, port, address, big)
    assert refused.value.smtp_code == 552

    # Switched off (here by the owner's command), the address is refused like an unknown one.
    await owner.send_text(rooms[0], "!clutto email off")
    await owner.wait_for_notice(rooms[0], "Email is off", sender=bridge.settings.bot_mxid)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(_send, port, address, b"Subject: hi\r\n\r\nhello\r\n")
    assert [code for code, _ in refused.value.recipients.values()] == [550]
    status, body = await api.call("GET", f"/teams/{team.id}/email")
    assert body == {"enabled": False, "address": address, "room_id": None}  # nothing came through
    actions = [e.action for e in await bridge.audit.for_team(team.id)]
    assert actions.count("email_enabled") == 1 and actions.count("email_disabled") == 1


async def test_email_on_is_refused_while_the_operator_has_not_enabled_email(bridge: Bridge, new_user) -> None:
    assert bridge.smtp is None  # the default: no listener, no port
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    await owner.send_text(rooms[0], "!clutto email on")
    await owner.wait_for_notice(rooms[0], "Email is not enabled on this bridge", sender=bridge.settings.bot_mxid)
    assert (await bridge.email.status(team, actor=owner.user_id)).address is None
