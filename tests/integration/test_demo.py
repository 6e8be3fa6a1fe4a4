"""The demo as a newcomer runs it: start, log in with the printed credentials, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from clutto_bridge.demo.synapse import free_port
from clutto_bridge.policy_files import CHECKOUT_TEXTS
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until


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


DEV_PY = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"


def _demo_env() -> dict[str, str]:
    """Every demo a test starts has a free homeserver port of its own unless it says one:
    a developer's demo may well be running on the default 8008."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "CLUTTO_DEMO_PORT": str(free_port())}


def _start_demo(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_demo_env(),
    )


def _start_through_dev_py(*args: str) -> subprocess.Popen:
    """The demo as ``scripts/dev.py demo`` runs it, with this environment's Python instead of
    the checkout's .venv (dev.py would create and install that first)."""
    code = (
        "import runpy, sys; dev = runpy.run_path(sys.argv[1]); "
        "sys.exit(dev['run_child']([sys.executable, '-m', 'clutto_bridge', 'demo', *sys.argv[2:]], "
        "env=dev['demo_environment']()))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(DEV_PY), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_demo_env(),
    )


def _kill_everything_of(folder: Path) -> None:
    """Clean-up after a failed test: no demo or Synapse of ``folder`` outlives it (dev.py's
    demo runs in a session of its own, so killing dev.py leaves it)."""
    for pid in _processes_mentioning(str(folder)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _until_running(process: subprocess.Popen) -> tuple[str, str, dict[str, str], str]:
    """The demo's printed homeserver URL, users with passwords and space, once it runs."""
    output = await asyncio.to_thread(_read_until, process, "Press Ctrl-C to stop.", 180)
    url = re.search(r"Homeserver URL for any Matrix client: (\S+)", output).group(1)
    users = dict(re.findall(r"(@\w+:\S+)\s+password: (\S+)", output))
    space_id = re.search(r"\(space (!\S+)\)", output).group(1)
    return output, url, users, space_id


async def _ctrl_c(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, 90)
    rest = process.stdout.read()
    assert code == 0, rest
    return rest


def _process_groups() -> dict[int, int]:
    """pid -> process group of every process (Linux /proc)."""
    groups = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ')'
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                groups[int(entry.name)] = int(fields[2])
        except (OSError, IndexError, ValueError):
            continue
    return groups


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` and a new server could listen there. (SO_REUSEADDR, as
    servers set it: the closed connections' TIME_WAIT entries do not hold a port.)"""
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


async def test_demo_user_sees_demo_team_then_ctrl_c_cleans_up_and_dir_resumes(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    folder = tmp_path / "demo"
    process = _start_demo("--dir", str(folder), "--port", str(free_port()))
    try:
        output, url, users, space_id = await _until_running(process)
        assert set(users) == {"@alice:localhost", "@bob:localhost"}
        # The shipped defaults: block mode, said on the first screen, and our policy from the
        # checkout's config/policy (no warning about placeholder texts).
        assert "each member accepts the privacy policy" in output
        assert "placeholder" not in output and "does not exist" not in output
        # End-to-end encryption is on, and the bot has a cross-signed device.
        assert "End-to-end encryption: team rooms and chats with the bot are encrypted" in output
        assert "cross-signed by its own identity" in output
        # The hint to resume names the command that started the demo.
        assert f"-m clutto_bridge demo --dir {folder}` again to resume" in output
        assert "doctor --fix changed" in output
        assert "WARNING" not in output, output  # what the user needs only; the bridge's log has the rest
        demo_config = (folder / "config.yaml").read_text()
        assert f"texts: {CHECKOUT_TEXTS}" in demo_config and "mode: block" in demo_config

        assert _processes_mentioning(str(folder / "synapse")), "Synapse should run from the demo folder"
        for user_id, password in users.items():
            client = await MatrixClient.login(url, user_id.split(":")[0][1:], password, http)
            await client.wait_for_invites({space_id})
            await client.join(space_id)
            rooms = await client.hierarchy(space_id)
            assert {room.get("name") for room in rooms} == {"Demo Team", "general", "random"}
        alice = await MatrixClient.login(url, "alice", users["@alice:localhost"], http)
        for room in rooms:
            if room["room_id"] != space_id:
                await alice.join(room["room_id"])
                assert (await alice.state(room["room_id"], "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"

        await _ctrl_c(process)
        assert _processes_mentioning(str(folder / "synapse")) == []

        # The same folder again: the same homeserver, users, passwords and team.
        process = _start_demo("--dir", str(folder))
        again, url_again, users_again, space_again = await _until_running(process)
        assert "Resuming the demo" in again
        # Its homeserver config is as doctor left it: nothing written, no second backup.
        assert "doctor: the homeserver's config needed no change; every check passes." in again
        assert len(list((folder / "synapse").glob("*.clutto-backup-*"))) == 2  # homeserver.yaml and log.yaml, once
        assert (url_again, users_again, space_again) == (url, users, space_id)
        alice = await MatrixClient.login(url, "alice", users["@alice:localhost"], http)
        assert alice.user_id in await alice.joined_members(space_id), "alice is still in the team's space"
        names = {room.get("name") for room in await alice.hierarchy(space_id)}
        assert names == {"Demo Team", "general", "random"}
        await _ctrl_c(process)

        # --fresh starts over: new accounts and a new team; the old password is gone.
        process = _start_demo("--dir", str(folder), "--fresh")
        _, url_fresh, users_fresh, space_fresh = await _until_running(process)
        assert space_fresh != space_id
        assert users_fresh["@alice:localhost"] != users["@alice:localhost"]
        await MatrixClient.login(url_fresh, "alice", users_fresh["@alice:localhost"], http)
        try:
            await MatrixClient.login(url_fresh, "alice", users["@alice:localhost"], http)
            raise AssertionError("the old demo's password still works after --fresh")
        except MatrixError as e:
            assert e.status == 403
        await _ctrl_c(process)
        assert _processes_mentioning(str(folder / "synapse")) == []
    finally:
        if process.poll() is None:
            process.kill()


def test_demo_refuses_a_folder_that_is_not_a_demos(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for extra in ([], ["--fresh"]):
        result = subprocess.run(
            [sys.executable, "-m", "clutto_bridge", "demo", "--dir", str(folder), *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "not a demo's folder" in result.stderr
        assert (folder / "notes.txt").read_text() == "keep me"


async def test_ctrl_c_while_a_command_runs_leaves_no_process_and_frees_the_port(http: aiohttp.ClientSession) -> None:
    port = free_port()
    process = _start_demo("--port", str(port))  # a temporary folder, deleted at the end
    try:
        output, url, users, _ = await _until_running(process)
        folder = Path(re.search(r"\(files in (\S+)\)", output).group(1))
        bridge_port = int(re.search(r"Provisioning API: http://127.0.0.1:(\d+)/", output).group(1))
        synapse_pids = _processes_mentioning(str(folder / "synapse"))
        assert synapse_pids, "Synapse should run from the demo folder"
        groups = {_process_groups()[pid] for pid in synapse_pids}  # Synapse leads its own group

        alice = await MatrixClient.login(url, "alice", users["@alice:localhost"], http)
        chat = await alice.create_dm("@clutto:localhost")
        await wait_until(
            lambda: _has(alice.joined_members(chat), "@clutto:localhost"), 30, "the bot joining alice's chat"
        )
        await alice.send_text(chat, "team create Second Team")
        log = folder / "bridge.log"
        await wait_until(  # the bridge's log line as it starts building the team (not the demo's)
            lambda: _contains(log, "(Second Team) for @alice"), 30, "the bridge to start creating the team"
        )
        await _ctrl_c(process)

        assert _processes_mentioning(str(folder)) == []
        left = {pid: group for pid, group in _process_groups().items() if group in groups}
        assert left == {}, f"processes of the demo remain: {left}"
        assert _port_free(port), "the homeserver port is still bound"
        assert _port_free(bridge_port), "the bridge's port is still bound"
        assert not folder.exists(), "the temporary folder should be deleted after Synapse stopped"
    finally:
        if process.poll() is None:
            process.kill()


async def _has(members, user_id: str) -> bool:
    return user_id in await members


async def _contains(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


async def test_sigint_to_dev_py_alone_stops_the_demo_and_its_synapse(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    process = _start_through_dev_py("--dir", str(folder))
    try:
        output, *_ = await _until_running(process)
        assert f"scripts/dev.py demo --dir {folder}` again to resume" in output  # not clutto-bridge: not on the PATH
        synapse_pid = int((folder / "synapse" / "homeserver.pid").read_text())
        assert synapse_pid in _processes_mentioning(str(folder / "synapse"))
        os.kill(process.pid, signal.SIGINT)  # dev.py's pid only, not its process group
        code = await asyncio.to_thread(process.wait, 90)
        rest = process.stdout.read()
        assert code == 0, rest
        assert "Stopping the bridge and Synapse" in rest
        assert _processes_mentioning(str(folder / "synapse")) == [], "the demo's Synapse is still running"
    finally:
        if process.poll() is None:
            process.kill()
        _kill_everything_of(folder)


async def test_a_synapse_left_by_a_killed_demo_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    process = _start_demo("--dir", str(folder))
    try:
        _, url, users, space_id = await _until_running(process)
        left_pid = int((folder / "synapse" / "homeserver.pid").read_text())
        process.kill()  # the demo alone, at once: its Synapse runs on in a session of its own
        process.wait()
        assert left_pid in _processes_mentioning(str(folder / "synapse"))

        process = _start_demo("--dir", str(folder))
        again, url_again, users_again, space_again = await _until_running(process)
        assert f"Stopped the Synapse (pid {left_pid}) that an interrupted demo left running in {folder}" in again
        assert left_pid not in _processes_mentioning(str(folder / "synapse"))
        assert (url_again, users_again, space_again) == (url, users, space_id)  # resumed on its port

        # While it runs, another start in the same folder is refused, naming the running demo.
        refused = subprocess.run(
            [sys.executable, "-m", "clutto_bridge", "demo", "--dir", str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_demo_env(),
        )
        assert refused.returncode == 1
        assert (
            f"still running (pid {process.pid}); stop it with Ctrl-C in its terminal or: kill -INT {process.pid}"
            in (refused.stderr)
        )
        await _ctrl_c(process)
        assert _processes_mentioning(str(folder / "synapse")) == []
    finally:
        if process.poll() is None:
            process.kill()
        _kill_everything_of(folder)


def test_the_demo_port_comes_from_the_option_or_the_environment(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, env in (([], {"CLUTTO_DEMO_PORT": str(port)}), (["--port", str(port)], {})):
            result = subprocess.run(
                [sys.executable, "-m", "clutto_bridge", "demo", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={**_demo_env(), **env},
            )
            assert result.returncode == 1
            assert f"Port {port} is in use" in result.stderr, result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "clutto_bridge", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CLUTTO_DEMO_PORT": "80800"},
    )
    assert (result.returncode, result.stderr.strip()) == (1, "CLUTTO_DEMO_PORT='80800' is not a port number (1-65535).")
