"""The access logger and the daily salt of the bridge's port (web/collection.py), on a real
aiohttp server: what reaches the log is what policy.collection keeps."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import aiohttp
from aiohttp import web

from clutto_bridge.clock import ManualClock
from clutto_bridge.policy.collection import CollectionRules, parse_networks
from clutto_bridge.web.collection import DailySalt, RequestCollection

DAY_MS = 86400 * 1000
ROOT = Path(__file__).resolve().parents[2]


def test_the_salt_changes_with_the_utc_day_and_only_then() -> None:
    clock = ManualClock(start_ms=10 * DAY_MS + 5)
    salt = DailySalt(clock)
    first = salt.current()
    clock.advance(DAY_MS - 10)
    assert salt.current() == first and len(first) == 32
    clock.advance(10)
    assert salt.current() != first


def test_a_new_bridge_has_a_new_salt() -> None:
    """The salt lives only in memory: a restart (a new object) cannot link to earlier hashes."""
    clock = ManualClock(start_ms=DAY_MS)
    assert DailySalt(clock).current() != DailySalt(clock).current()


async def test_access_lines_hold_only_what_the_policy_keeps(caplog) -> None:
    rules = CollectionRules(
        ip="hashed", user_agent="none", referrer="none", language="none", trusted_proxies=parse_networks(["127.0.0.1"])
    )
    collection = RequestCollection(rules, ManualClock())
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/users/{user_id}", hello)
    runner = web.AppRunner(app, **collection.runner_options())
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    caplog.set_level(logging.DEBUG)
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"X-Forwarded-For": "203.0.113.50", "User-Agent": "Firefox/1", "Referer": "https://x.example/p"}
            async with http.get(
                f"http://127.0.0.1:{port}/users/@alice:example.com?access_token=secret", headers=headers
            ) as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "clutto.access"]
    assert len(lines) == 1 and lines[0].startswith("h:") and '"GET /users/{user_id}" 200' in lines[0]
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("203.0.113.50", "@alice", "access_token", "secret", "Firefox", "x.example"):
        assert secret not in text
    assert not [r for r in caplog.records if r.name == "aiohttp.access"]


async def test_the_facts_of_a_client_are_worked_out_once_for_the_record_and_the_log_line(caplog, monkeypatch) -> None:
    """Once per request for the record and the log line, and once per client and day: the same
    client's next request reuses them; another browser, or the next day's salt, does not."""
    from clutto_bridge.web import collection as module

    rules = CollectionRules(
        ip="hashed",
        user_agent="family",
        referrer="origin",
        language="none",
        trusted_proxies=parse_networks(["127.0.0.1"]),
    )
    clock = ManualClock()
    collection = RequestCollection(rules, clock)
    calls = []
    worked_out = module.request_facts
    monkeypatch.setattr(module, "request_facts", lambda *args: calls.append(args) or worked_out(*args))

    class Records:
        kept: list = []

        def record(self, method, route, status, facts) -> None:
            self.kept.append(facts)

    records = Records()
    app = web.Application(middlewares=[collection.middleware(records)])

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/teams/{team_id}", hello)
    runner = web.AppRunner(app, **collection.runner_options())
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    caplog.set_level(logging.INFO, logger="clutto.access")
    try:
        async with aiohttp.ClientSession() as http:

            async def get(user_agent: str) -> None:
                async with http.get(f"http://127.0.0.1:{port}/teams/t1", headers={"User-Agent": user_agent}) as resp:
                    assert resp.status == 200

            await get("curl/8.5")
            await get("curl/8.5")
            assert len(calls) == 1
            await get("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
            assert len(calls) == 2
            clock.advance(86_400_000)
            await get("curl/8.5")
            assert len(calls) == 3
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "clutto.access"]
    assert len(records.kept) == 4 and len(lines) == 4
    assert [f.user_agent for f in records.kept] == ["curl", "curl", "Firefox on Linux", "curl"]
    assert all('ua="curl"' in line for line in lines[:2]) and 'ua="Firefox on Linux"' in lines[2]
    # The same client: one hashed address on one day, another on the next.
    assert records.kept[0].client == records.kept[1].client != records.kept[3].client


def test_the_bridge_asks_the_homeserver_for_no_device_data() -> None:
    """whois and the devices API return every session's IP address and user agent (P4)."""
    source = "\n".join(p.read_text() for p in (ROOT / "clutto_bridge").rglob("*.py"))
    assert ".whois" not in source and "whois[" not in source
    assert "devices[" not in source and ".devices" not in source and "/devices" not in source


def test_aiosmtpd_warnings_name_the_peer_only_as_the_policy_keeps_it(caplog) -> None:
    collection = RequestCollection(CollectionRules(ip="truncated"), ManualClock())
    logger = logging.getLogger("mail.log")
    peer_filter = collection.peer_filter()
    logger.addFilter(peer_filter)
    try:
        with caplog.at_level(logging.WARNING, logger="mail.log"):
            logger.warning("%r unrecognised: %s", ("203.0.113.5", 51234), "HELLO")
            logger.warning("%r invalid PROXY handshake", ("2001:db8:1:2::9", 25))
    finally:
        logger.removeFilter(peer_filter)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "('203.0.113.0/24', 51234) unrecognised: HELLO" in text
    assert "2001:db8:1::/48" in text and "2001:db8:1:2::9" not in text and "203.0.113.5" not in text


async def test_a_second_forwarded_for_line_from_the_proxy_wins_over_the_clients_own(caplog) -> None:
    from multidict import CIMultiDict

    collection = RequestCollection(
        CollectionRules(ip="full", trusted_proxies=parse_networks(["127.0.0.1"])), ManualClock()
    )
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=str(collection.facts(request).client))

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        headers = CIMultiDict([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/", headers=headers) as resp:
                assert await resp.text() == "198.51.100.7"
    finally:
        await runner.cleanup()
