"""A hung bridge is noticed: under systemd it stops its watchdog pings, and the Docker
HEALTHCHECK probe fails (issue 23).

The bridge runs as its own process with ``NOTIFY_SOCKET`` pointing at a datagram socket
this test owns (as systemd's would) and ``WATCHDOG_USEC`` set; a test hook
(``CLUTTO_TEST_BLOCK_LOOP``, ``clutto_bridge/testhooks.py``) blocks its event loop on
SIGUSR1 until the test writes to a named pipe.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.integration.conftest import Bridges
from tests.integration.matrix_client import wait_until

pytestmark = pytest.mark.integration

WATCHDOG_USEC = 1_000_000  # systemd's WatchdogSec=1s: a ping every 0.5 s


class Manager:
    """The service manager's end of the notify socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.path = path

    async def message(self, timeout: float) -> str | None:
        """The next datagram, or None when none arrives within ``timeout``."""
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 4096), timeout)
        except TimeoutError:
            return None
        return data.decode()

    async def wait_for(self, wanted: str, timeout: float) -> list[str]:
        """Messages until one holding ``wanted`` arrives; fails after ``timeout``."""
        seen: list[str] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await self.message(left)
            if message is None:
                break
            seen.append(message)
            if wanted in message.split("\n"):
                return seen
        raise AssertionError(f"no {wanted} within {timeout:g}s; got {seen}")

    def drain(self) -> list[str]:
        """What is already waiting (sent before now)."""
        waiting = []
        while True:
            try:
                waiting.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return waiting


def _health(config: Path, timeout: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "health", "-c", str(config), "--timeout", str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _open_for_writing(fifo: Path) -> int | None:
    """The pipe's write end once the blocked loop holds its read end (the loop is blocked)."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:  # no reader yet: the signal handler has not run
            return None
        raise


async def test_under_systemd_the_bridge_says_ready_and_pings_only_while_its_loop_answers(
    bridges: Bridges, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    settings = bridges.settings()
    config = bridges.folder / "config.yaml"
    manager = Manager(tmp_path / "notify")
    fifo = tmp_path / "block"
    os.mkfifo(fifo)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "NOTIFY_SOCKET": str(manager.path),
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
        "CLUTTO_TEST_BLOCK_LOOP": str(fifo),
    }
    bridges.homeserver.front.target = f"http://127.0.0.1:{settings.appservice.port}"
    log = tmp_path / "bridge-process.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "-c", str(config)],
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    writer: int | None = None
    try:
        seen = await manager.wait_for("READY=1", 90)
        assert not any("WATCHDOG=1" in m for m in seen), "a ping before READY=1"
        await manager.wait_for("WATCHDOG=1", 10)
        url = f"http://127.0.0.1:{settings.appservice.port}/_clutto/health"
        async with http.get(url) as resp:
            assert (resp.status, await resp.json()) == (200, {"status": "ok"})

        # The loop blocks: no ping arrives, and the HEALTHCHECK probe fails on its timeout.
        process.send_signal(signal.SIGUSR1)

        async def blocked() -> int | None:
            return await asyncio.to_thread(_open_for_writing, fifo)

        writer = await wait_until(blocked, 30, "the bridge's event loop to block")
        manager.drain()  # pings sent before the loop blocked
        probe = _health(config, timeout=2)
        assert await manager.message(timeout=4 * WATCHDOG_USEC / 1e6) is None, "a ping while the loop was blocked"
        out, err = await asyncio.to_thread(probe.communicate, timeout=60)
        assert probe.returncode == 1, (out, err)
        assert "did not answer within 2 s" in err and "Traceback" not in err, err
        assert manager.drain() == [], "a ping while the loop was blocked"

        # Released, it pings again and the probe passes.
        os.write(writer, b"x")
        os.close(writer)
        writer = None
        await manager.wait_for("WATCHDOG=1", 10)
        probe = _health(config, timeout=10)
        out, err = await asyncio.to_thread(probe.communicate, timeout=60)
        assert (probe.returncode, out.strip()) == (0, "ok"), (out, err)

        process.send_signal(signal.SIGTERM)
        await manager.wait_for("STOPPING=1", 30)
        assert await asyncio.to_thread(process.wait, 60) == 0
    except BaseException:
        print(log.read_text()[-5000:])
        raise
    finally:
        if writer is not None:
            os.close(writer)
        bridges.homeserver.front.target = None
        if process.poll() is None:
            process.kill()
            process.wait(10)
        manager.sock.close()
