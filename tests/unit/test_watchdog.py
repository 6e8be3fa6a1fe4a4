"""The sd_notify protocol as systemd speaks it: datagrams on $NOTIFY_SOCKET (issue 23)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from clutto_bridge.watchdog import Watchdog, notify, ping_interval


@pytest.fixture
def manager(tmp_path: Path):
    """A datagram socket standing in for systemd's."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_notify_sends_one_datagram_and_is_silent_outside_systemd(manager) -> None:
    sock, env = manager
    assert notify("READY=1", env)
    assert sock.recv(4096) == b"READY=1"
    assert not notify("READY=1", {})


def test_abstract_socket_address() -> None:
    name = f"clutto-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_a_socket_nobody_listens_on_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


@pytest.mark.parametrize(
    "env, interval",
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_ping_interval_is_half_the_watchdog(env: dict, interval: float | None) -> None:
    assert ping_interval(env) == interval


async def test_pings_follow_the_self_check(manager) -> None:
    sock, env = manager
    sock.setblocking(False)
    healthy = asyncio.Event()
    healthy.set()

    async def check() -> None:
        if not healthy.is_set():
            raise RuntimeError("database gone")

    loop = asyncio.get_running_loop()

    async def message(timeout: float) -> bytes | None:
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
        except TimeoutError:
            return None

    watchdog = Watchdog(check, {**env, "WATCHDOG_USEC": "100000"})  # a ping every 0.05 s
    watchdog.start()
    try:
        assert (await message(5)).startswith(b"READY=1")
        assert await message(5) == b"WATCHDOG=1"
        healthy.clear()
        while await message(0.01) is not None:
            pass  # pings sent before the failure
        assert await message(0.5) is None  # ten intervals, no ping
        healthy.set()
        assert await message(5) == b"WATCHDOG=1"
    finally:
        await watchdog.stop()
    assert await message(5) == b"STOPPING=1"
