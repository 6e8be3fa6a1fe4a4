"""What an interrupted demo leaves behind, and how the next start deals with it.

Synapse runs in a session of its own, so a demo killed outright (SIGKILL, a crashed
terminal) leaves its Synapse running, holding the port. The next start stops it, but only
when it is certainly ours: no demo is running in that folder (a running demo holds the
folder's lock), the folder's ``synapse/homeserver.pid`` names it, and that process is a
Synapse started with the folder's own ``homeserver.yaml``. Anything less certain is not
signalled; the refusal then names the process and how to stop it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAMLError

from clutto_bridge.demo.synapse import load_yaml

LOCK_FILE = "demo.lock"
TEMPORARY_PREFIX = "clutto-demo-"


class FolderLock:
    """Held by the demo running in a folder for as long as it runs (released by the kernel
    however the demo ends). The lock file holds the demo's pid, for refusals."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid of the demo holding the lock, as written in the lock file."""
        with contextlib.suppress(OSError):
            return self.path.read_text().strip() or "?"
        return "?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def is_locked(folder: Path) -> bool:
    """Whether a demo is running in ``folder`` (without taking its lock for longer than a check)."""
    if not (folder / LOCK_FILE).exists():
        return False
    lock = FolderLock(folder)
    if not lock.acquire():
        return True
    lock.release()
    return False


def synapse_of(folder: Path) -> int | None:
    """The pid in ``folder/synapse/homeserver.pid`` if that process is a Synapse started with
    ``folder/synapse/homeserver.yaml``; None otherwise (no file, a reused pid, another program)."""
    try:
        pid = int((folder / "synapse" / "homeserver.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_synapse_with(pid, folder / "synapse" / "homeserver.yaml") else None


def _is_synapse_with(pid: int, config: Path) -> bool:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"synapse.app.homeserver" in arguments and str(config).encode() in arguments


def stop(pid: int, config: Path, timeout: float) -> bool:
    """SIGTERM, then SIGKILL to its process group after ``timeout`` (it leads one); True once
    it is gone. False if it may not be signalled (another user's)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    if _gone_within(pid, config, timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return _gone_within(pid, config, 10)


def _gone_within(pid: int, config: Path, timeout: float) -> bool:
    """Polled: the process is not our child, so it cannot be waited for. A zombie (not yet
    reaped by init) has no command line, so it counts as gone."""
    deadline = time.monotonic() + timeout
    while _is_synapse_with(pid, config):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def temporary_demos() -> list[Path]:
    """Folders of demos run without ``--dir`` (each under the system's temporary folder)."""
    return sorted(Path(tempfile.gettempdir()).glob(TEMPORARY_PREFIX + "*"))


def listens_on(folder: Path, port: int) -> bool:
    """Whether the Synapse config in ``folder`` listens on ``port`` (as the demo writes it)."""
    try:
        config = load_yaml(folder / "synapse" / "homeserver.yaml")
    except (OSError, YAMLError):
        return False
    return any(isinstance(item, dict) and item.get("port") == port for item in config.get("listeners") or [])
