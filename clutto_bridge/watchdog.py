"""Liveness for a service manager: systemd's notify protocol and watchdog (issue 23).

A hung bridge is worse than a stopped one: synapse-http-antispam has no timeout of its own,
so every gated event on the homeserver waits for Synapse's HTTP timeout (60 s) instead of
failing open at once. Under systemd (``Type=notify``, ``WatchdogSec=``) the bridge says
``READY=1`` once it serves, then ``WATCHDOG=1`` at half the watchdog interval, but only from
a task on the event loop and only after a self-check passed (the query the homeserver's
questions use answers in time). A blocked loop or a database that does not answer sends no
ping, and systemd restarts the process (``Restart=on-failure``).

The protocol is one datagram per message to the AF_UNIX socket in ``$NOTIFY_SOCKET`` (a
leading ``@`` names an abstract socket); ``$WATCHDOG_USEC`` is the interval, meant for this
process when ``$WATCHDOG_PID`` is unset or is our pid. Without ``$NOTIFY_SOCKET`` (not under
systemd) nothing is sent. The standard library does it; no dependency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("clutto.watchdog")


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send one notify message (``READY=1``, ``WATCHDOG=1``, ...); False when there is nobody to tell."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as e:
        log.warning("Could not notify the service manager at %s: %s", environ.get("NOTIFY_SOCKET"), e)
        return False
    return True


def ping_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between pings (half the manager's watchdog interval), or None without a watchdog."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


class Watchdog:
    """``READY=1`` on start, then ``WATCHDOG=1`` while ``self_check`` answers within the interval."""

    def __init__(self, self_check: Callable[[], Awaitable[object]], environ: Mapping[str, str] = os.environ) -> None:
        self.self_check = self_check
        self.environ = environ
        self.interval = ping_interval(environ)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if not notify("READY=1\nSTATUS=Bridge ready", self.environ):
            return
        if self.interval is not None:
            log.info("systemd watchdog on: a ping every %.1f s while the bridge answers", self.interval)
            self._task = asyncio.create_task(self._ping_forever(), name="clutto-watchdog")

    async def stop(self) -> None:
        notify("STOPPING=1", self.environ)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _ping_forever(self) -> None:
        assert self.interval is not None
        while True:
            if await self.alive(self.interval):
                notify("WATCHDOG=1", self.environ)
            await asyncio.sleep(self.interval)

    async def alive(self, timeout: float) -> bool:
        """The self-check answered within ``timeout``; a failure is logged, never raised."""
        try:
            await asyncio.wait_for(self.self_check(), timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("Liveness self-check did not answer within %.1f s; no watchdog ping", timeout)
            return False
        except Exception as e:
            log.warning("Liveness self-check failed (%s: %s); no watchdog ping", type(e).__name__, e)
            return False
        return True
