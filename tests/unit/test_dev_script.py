"""scripts/dev.py: what a newcomer's terminal shows while the checkout sets itself up."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

DEV_PY = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"
NOISE = "import sys; print('Editable installation warning block'); print('more noise', file=sys.stderr)"


@pytest.fixture(scope="module")
def dev() -> dict:
    return runpy.run_path(str(DEV_PY))  # not as __main__: nothing runs


def test_the_installers_output_goes_to_the_log_not_the_terminal(dev, tmp_path: Path, capfd) -> None:
    log = tmp_path / "install.log"
    dev["install"]([[sys.executable, "-c", NOISE], [sys.executable, "-c", "print('second step')"]], log)
    shown = capfd.readouterr()
    assert (shown.out, shown.err) == ("", "")
    text = log.read_text()
    assert "Editable installation warning block" in text and "more noise" in text and "second step" in text


def test_a_failed_install_shows_the_end_of_the_log_and_where_it_is(dev, tmp_path: Path, capfd) -> None:
    log = tmp_path / "install.log"
    failing = [sys.executable, "-c", "import sys; print('ERROR: no matching distribution'); sys.exit(3)"]
    with pytest.raises(SystemExit) as stopped:
        dev["install"]([failing, [sys.executable, "-c", "print('never run')"]], log)
    message = str(stopped.value.code)
    assert "ERROR: no matching distribution" in message
    assert message.endswith(f"Installing failed (exit code 3); the installer's output is in {log}")
    assert "never run" not in log.read_text()
    assert capfd.readouterr().out == ""


def test_the_demo_is_told_the_command_the_user_ran(dev, monkeypatch) -> None:
    monkeypatch.chdir(DEV_PY.parents[1])
    env = dev["demo_environment"]()
    command = env["CLUTTO_DEMO_COMMAND"]
    assert command.endswith(" scripts/dev.py demo"), command
    python = command.split(" ", 1)[0]
    assert python == Path(sys.executable).name or python == sys.executable


def test_the_demos_hints_name_the_command_that_started_it(monkeypatch, tmp_path: Path) -> None:
    from clutto_bridge.demo.run import COMMAND_VARIABLE, demo_command

    monkeypatch.setenv(COMMAND_VARIABLE, "python3 scripts/dev.py demo")
    assert demo_command("/anything/clutto-bridge") == "python3 scripts/dev.py demo"
    monkeypatch.delenv(COMMAND_VARIABLE)
    assert demo_command("/x/clutto_bridge/__main__.py").endswith(" -m clutto_bridge demo")
    program = tmp_path / "bin" / "clutto-bridge"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert demo_command(str(program)) == f"{program} demo"  # not on the PATH: its whole path
    monkeypatch.setenv("PATH", str(program.parent))
    assert demo_command(str(program)) == "clutto-bridge demo"
