"""The demo's clean-up without a homeserver: stopping wins over starting, a stuck process
group is killed, a slow bridge does not keep Synapse running, a folder is resumed or refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clutto_bridge.demo import run, stale
from clutto_bridge.demo.synapse import LocalSynapse, SynapseStopped


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stopped_synapse_never_starts(tmp_path: Path) -> None:
    synapse = LocalSynapse(tmp_path / "synapse")
    synapse.stop()
    with pytest.raises(SynapseStopped):
        synapse.start()
    assert synapse.process is None


def test_stop_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    synapse = LocalSynapse(tmp_path / "synapse")
    # A leader that ignores SIGTERM, with a child in its group that outlives it.
    synapse.process = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & sleep 60"], start_new_session=True)
    pgid = synapse.process.pid
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(_members(pgid)) < 2:
        time.sleep(0.05)
    started = time.monotonic()
    synapse.stop(timeout=0.5)
    assert synapse.process.poll() is not None
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5  # the killed child is reaped by init
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    assert not _group_alive(pgid)


def _members(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


async def test_a_bridge_that_does_not_stop_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    class StuckBridge:
        async def stop(self, grace: float) -> None:
            await asyncio.Event().wait()

    class FailingBridge:
        async def stop(self, grace: float) -> None:
            raise RuntimeError("database is gone")

    monkeypatch.setattr(run, "BRIDGE_STOP_TIMEOUT", 0.2)
    await asyncio.wait_for(run._stop_bridge(StuckBridge()), 5)
    await asyncio.wait_for(run._stop_bridge(FailingBridge()), 5)


def test_folders_new_resumed_cleared_or_refused(tmp_path: Path) -> None:
    new = tmp_path / "new"
    assert run._prepare_folder(new, fresh=False) is None and new.is_dir()

    demo = tmp_path / "demo"
    demo.mkdir()
    run.DemoState(port=8123, users={"alice": {"user_id": "@alice:localhost", "password": "pw"}}).save(demo)
    (demo / "clutto.db").write_text("")
    assert run._prepare_folder(demo, fresh=False) is None
    assert run.DemoState.load(demo).users["alice"]["password"] == "pw"
    assert (demo / run.STATE_FILE).stat().st_mode & 0o077 == 0
    assert run._prepare_folder(demo, fresh=True) is None
    assert list(demo.iterdir()) == []

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    for fresh in (False, True):
        assert "not a demo's folder" in run._prepare_folder(other, fresh=fresh)
    assert (other / "notes.txt").read_text() == "keep me"


def _pretend_synapse(folder: Path, config: Path | None = None) -> subprocess.Popen:
    """A process whose command line is a Synapse's with ``config`` (or another program's),
    its pid in the folder's pid file as Synapse writes it."""
    (folder / "synapse").mkdir(parents=True, exist_ok=True)
    arguments = ["synapse.app.homeserver", "-c", str(config)] if config else ["something-else"]
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *arguments])
    # Until the child has exec'd, /proc shows the parent's command line: wait for its own.
    deadline = time.monotonic() + 10
    while arguments[0].encode() not in Path(f"/proc/{process.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the pretend Synapse did not start"
        time.sleep(0.01)
    (folder / "synapse" / "homeserver.pid").write_text(f"{process.pid}\n")
    return process


def test_a_synapse_left_in_the_folder_is_stopped_and_anything_else_left_alone(tmp_path: Path, capsys) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    run.DemoState(port=8123).save(demo)
    others = [
        _pretend_synapse(demo),  # the pid file names another program (a reused pid)
        _pretend_synapse(tmp_path / "elsewhere", tmp_path / "elsewhere" / "synapse" / "homeserver.yaml"),
    ]
    (demo / "synapse" / "homeserver.pid").write_text(str(others[0].pid))
    try:
        assert stale.synapse_of(demo) is None
        assert run._prepare_folder(demo, fresh=False) is None
        assert all(p.poll() is None for p in others)

        ours = _pretend_synapse(demo, demo / "synapse" / "homeserver.yaml")
        assert stale.synapse_of(demo) == ours.pid
        assert run._prepare_folder(demo, fresh=False) is None
        assert ours.wait(5) is not None
        assert f"Stopped the Synapse (pid {ours.pid})" in capsys.readouterr().out
        assert all(p.poll() is None for p in others)
    finally:
        for process in others:
            process.kill()


def test_a_folder_whose_demo_runs_is_refused_naming_it(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    run.DemoState(port=8123).save(demo)
    lock = stale.FolderLock(demo)
    assert lock.acquire()
    try:
        for fresh in (False, True):
            problem = run._prepare_folder(demo, fresh=fresh)
            assert f"still running (pid {os.getpid()})" in problem and f"kill -INT {os.getpid()}" in problem
        assert (demo / run.STATE_FILE).exists()
    finally:
        lock.release()
    assert run._prepare_folder(demo, fresh=True) is None
    assert [p.name for p in demo.iterdir()] == [stale.LOCK_FILE]
