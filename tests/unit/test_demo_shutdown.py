"""The demo's clean-up without a homeserver: stopping wins over starting, a stuck process
group is killed, a slow bridge does not keep Synapse running, a folder is resumed or refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from clutto_bridge.demo import run
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
    synapse.process = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & sleep 60"], start_new_session=True
    )
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
