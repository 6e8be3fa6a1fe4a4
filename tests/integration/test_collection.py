"""Log data (P4): requests with known addresses, browsers, referrers and languages reach the
bridge through a trusted proxy (127.0.0.1, with X-Forwarded-For); then the bridge's log file
and its database (SQLite files or every PostgreSQL row) hold them only as policy.collection says."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from clutto_bridge.app import Bridge
from clutto_bridge.cli import LOG_FORMAT
from clutto_bridge.clock import ManualClock
from tests.integration.conftest import Bridges

CLIENT_V4 = "198.51.100.77"
CLIENT_V6 = "2001:db8:abcd:12::7"
CLIENT_V6_EXPLODED = "2001:0db8:abcd:0012:0000:0000:0000:0007"
SPOOFED = "6.6.6.6"  # written by the client itself, left of what the proxy added: never believed
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
REFERRER = "https://portal.example.com/secret-path?member=alice"
LANGUAGE = "de-CH, de;q=0.9"
DAY_MS = 86400 * 1000


@pytest.fixture
def bridge_log(tmp_path: Path):
    """Everything the bridge process logs, at DEBUG, in a file (as an operator's log file)."""
    path = tmp_path / "bridge.log"
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    # pytest holds the root at log_level (INFO); the bridge's own loggers go to DEBUG here.
    loggers = [logging.getLogger(name) for name in ("aiohttp", "mau", "clutto")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield path
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)
    root.removeHandler(handler)
    handler.close()


async def _requests(bridge: Bridge, http: aiohttp.ClientSession) -> None:
    """The provisioning API (with and without a token), the appservice endpoint, an unknown
    path, and bytes that are not HTTP at all: every kind of request the port serves."""
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}"
    secret = bridge.settings.provisioning.shared_secret
    browser = {"User-Agent": FIREFOX, "Referer": REFERRER, "Accept-Language": LANGUAGE}
    calls = [
        (
            "GET",
            "/_clutto/v1/teams",
            {"Authorization": f"Bearer {secret}", "X-Forwarded-For": f"{SPOOFED}, {CLIENT_V4}"},
        ),
        ("GET", "/_clutto/v1/teams", {"X-Forwarded-For": CLIENT_V4}),
        ("PUT", "/_matrix/app/v1/transactions/t1", {"X-Forwarded-For": CLIENT_V6, "Authorization": "Bearer wrong"}),
        ("GET", "/no/such/page", {"X-Forwarded-For": CLIENT_V6}),
    ]
    for method, path, headers in calls:
        async with http.request(method, base + path, headers={**browser, **headers}, json={}) as resp:
            assert resp.status in (200, 401, 403, 404), (path, resp.status)
    await asyncio.to_thread(_not_http, bridge.settings.appservice.port)


def _not_http(port: int) -> None:
    """What a scanner or a TLS client sends to a plain-HTTP port: aiohttp logs the peer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        try:
            sock.recv(1024)
        except OSError:
            pass


async def _database_holds(database: str, needle: str) -> list[str]:
    """Where the bridge's database holds ``needle``: its SQLite files (bytes, WAL included),
    or any row of any PostgreSQL table."""
    if database.startswith("sqlite:"):
        path = Path(database.removeprefix("sqlite:"))
        files = [f for f in path.parent.glob(path.name + "*") if f.is_file()]
        assert files
        return [str(f) for f in files if needle.encode() in f.read_bytes()]
    conn = await asyncpg.connect(database)
    try:
        tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        assert "access_record" in tables
        return [
            t
            for t in tables
            if await conn.fetchval(f'SELECT COUNT(*) FROM "{t}" AS r WHERE strpos(r::text, $1) > 0', needle)
        ]
    finally:
        await conn.close()


def _access_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if " clutto.access: " in line]


FULL_ADDRESSES = (CLIENT_V4, CLIENT_V6, CLIENT_V6_EXPLODED)


@pytest.mark.promise("P4")
@pytest.mark.parametrize(
    ("ip", "user_agent", "referrer", "language", "shown_client"),
    [
        ("truncated", "family", "origin", "none", "198.51.100.0/24"),
        ("hashed", "full", "full", "keep", "h:"),
        ("none", "none", "none", "none", None),
    ],
)
async def test_requests_are_logged_and_recorded_only_as_the_policy_says(
    bridges: Bridges,
    http: aiohttp.ClientSession,
    bridge_log: Path,
    ip: str,
    user_agent: str,
    referrer: str,
    language: str,
    shown_client: str | None,
) -> None:
    settings = bridges.settings(
        policy__collection__ip=ip,
        policy__collection__user_agent=user_agent,
        policy__collection__referrer=referrer,
        policy__collection__language=language,
        policy__collection__trusted_proxies=["127.0.0.1"],
    )
    bridge = await bridges.start(settings)
    await _requests(bridge, http)

    records = [r for r in await bridge.access.recent() if r.route != "/_matrix/mau/live"]
    ours = [r for r in records if r.user_agent is None or "Firefox" in (r.user_agent or "") or user_agent == "none"]
    routes = {(r.method, r.route, r.status) for r in records}
    assert ("GET", "/_clutto/v1/teams", 200) in routes
    assert ("GET", "/_clutto/v1/teams", 401) in routes
    assert ("PUT", "/_matrix/app/v1/transactions/{transaction_id}", 401) in routes  # wrong hs_token
    assert ("GET", "unmatched", 404) in routes  # the path as requested is never kept
    log = bridge_log.read_text()
    lines = _access_lines(bridge_log)
    assert any('"GET /_clutto/v1/teams" 200' in line for line in lines), log[-3000:]
    assert "Error handling request from" in log  # aiohttp's own line about the non-HTTP bytes
    assert " aiohttp.access: " not in log  # aiohttp's access logger (full peer address, full URL) is replaced

    for address in (*FULL_ADDRESSES, SPOOFED):
        assert address not in log, f"{address} in the bridge's log"
        assert await _database_holds(bridges.database, address) == [], f"{address} in the database"
    if ip == "truncated":
        assert {r.client for r in ours} >= {"198.51.100.0/24", "2001:db8:abcd::/48"}
        assert "198.51.100.0/24" in log and "2001:db8:abcd::/48" in log
        assert "Error handling request from 127.0.0.0/24" in log
    elif ip == "hashed":
        v4 = {r.client for r in records if r.route == "/_clutto/v1/teams"}
        assert len(v4) == 1 and next(iter(v4)).startswith("h:")  # one client, linkable within the day
        assert all(r.client and r.client.startswith("h:") for r in records)
    else:
        assert all(r.client is None for r in records)
        assert "198.51.100" not in log and "2001:db8" not in log
        assert "Error handling request from -" in log

    ua_values = {r.user_agent for r in ours}
    ref_values = {r.referrer for r in ours}
    lang_values = {r.language for r in ours}
    if user_agent == "family":
        assert "Firefox on Linux" in ua_values and "Firefox/128.0" not in log
        assert await _database_holds(bridges.database, "Firefox/128.0") == []
    elif user_agent == "full":
        assert FIREFOX in ua_values
    else:
        assert ua_values == {None} and "Firefox" not in "\n".join(lines)
    if referrer == "origin":
        assert "https://portal.example.com" in ref_values
        assert "secret-path" not in log and await _database_holds(bridges.database, "secret-path") == []
    elif referrer == "full":
        assert REFERRER in ref_values
    else:
        assert ref_values == {None} and "portal.example.com" not in log
    if language == "none":
        assert lang_values == {None} and "de-CH" not in log
        assert await _database_holds(bridges.database, "de-CH") == []
    else:
        assert LANGUAGE in lang_values


@pytest.mark.promise("P4")
async def test_access_records_past_retention_are_gone_after_the_sweep(
    bridges: Bridges,
    http: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    bridge = await bridges.start(bridges.settings(policy__collection__retention="2d"), clock=clock)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}"
    async with http.get(base + "/_clutto/v1/teams", headers={"User-Agent": "old request"}) as resp:
        assert resp.status == 401
    assert any(r.user_agent == "Other" for r in await bridge.access.recent())

    clock.advance(DAY_MS)
    async with http.get(base + "/_clutto/v1/teams", headers={"User-Agent": "curl/8.5"}) as resp:
        assert resp.status == 401
    assert await bridge.access.forget_expired() == 0  # a day old: within the two days kept

    clock.advance(DAY_MS + 1000)  # the first request is now past 2d, the second is not
    gone = await bridge.access.forget_expired()
    kept = await bridge.access.recent()
    assert gone >= 1
    assert [r for r in kept if r.user_agent == "Other"] == []
    assert [r.user_agent for r in kept if r.route == "/_clutto/v1/teams"] == ["curl"]
    assert all(r.at >= clock.now_ms() - 2 * DAY_MS for r in kept)
