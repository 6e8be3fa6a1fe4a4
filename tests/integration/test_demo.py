"""The demo as a newcomer runs it: start, log in with the printed credentials, stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from clutto_bridge.demo.synapse import free_port
from tests.integration.matrix_client import MatrixClient


def _read_until(process: subprocess.Popen, marker: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("demo exited early:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {timeout}s:\n" + "".join(seen))


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_demo_user_sees_demo_team_then_ctrl_c_cleans_up(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    folder = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "demo", "--dir", str(folder), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        output = await asyncio.to_thread(_read_until, process, "Press Ctrl-C to stop.", 120)
        url = re.search(r"Homeserver URL for any Matrix client: (\S+)", output).group(1)
        users = dict(re.findall(r"(@\w+:\S+)\s+password: (\S+)", output))
        space_id = re.search(r"\(space (!\S+)\)", output).group(1)
        assert set(users) == {"@alice:localhost", "@bob:localhost"}

        assert _processes_mentioning(str(folder / "synapse")), "Synapse should run from the demo folder"
        for user_id, password in users.items():
            client = await MatrixClient.login(url, user_id.split(":")[0][1:], password, http)
            await client.wait_for_invites({space_id})
            await client.join(space_id)
            names = {room.get("name") for room in await client.hierarchy(space_id)}
            assert names == {"Demo Team", "general", "random"}

        process.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(process.wait, 60)
        assert code == 0, process.stdout.read()
        assert _processes_mentioning(str(folder / "synapse")) == []
    finally:
        if process.poll() is None:
            process.kill()
