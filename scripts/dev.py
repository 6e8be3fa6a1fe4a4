#!/usr/bin/env python3
"""The two set-up commands of a checkout, needing only Python 3.11+ and PyPI:

    python3 scripts/dev.py demo    # Synapse + the bridge + a demo team, until Ctrl-C
    python3 scripts/dev.py test    # the whole test suite (extra arguments go to pytest)

Each creates .venv/ and installs the project with the extra it needs, again only when
pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
INSTALL_LOG = VENV / "install.log"
DEMO_COMMAND_VARIABLE = "CLUTTO_DEMO_COMMAND"  # read by clutto_bridge.demo.run for its hints
LOG_TAIL = 20  # lines of the installer's log shown when it fails


def ensure_environment(extra: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (this runs under any python3, to say what it needs)
        sys.exit(f"clutto-bridge needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extra}"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print(f"Creating {VENV} …", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as e:  # Debian without python3-venv, for instance
            sys.exit(
                f"Could not create a virtual environment ({e}). Install your system's venv support, e.g. python3-venv."
            )
    print(f"Installing clutto-bridge[{extra}] into {VENV} (a few minutes the first time) …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    install([[*pip, "--upgrade", "pip"], [*pip, "--editable", f"{ROOT}[{extra}]"]], INSTALL_LOG)
    stamp.write_text(digest)


def install(commands: list[list[str]], log: Path) -> None:
    """Run the installer's commands with their output in ``log``, not in the terminal: pip
    and setuptools print warnings (setuptools' "Editable installation" block) that mean
    nothing to someone starting the demo. On a failure, the end of the log and its path."""
    code = 0
    with open(log, "w") as out:
        for command in commands:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
            if code != 0:
                break
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        sys.exit("\n".join([*tail, "", f"Installing failed (exit code {code}); the installer's output is in {log}"]))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "demo"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_environment(command)
    if command == "test":
        return run_child([str(PYTHON), "-m", "pytest", *rest])
    return run_child([str(BIN / "clutto-bridge"), "demo", *rest], env=demo_environment())


def demo_environment() -> dict[str, str]:
    """The demo's environment, telling it how it was started: its hints ("run … again to
    resume") name this script, since .venv/bin/clutto-bridge is not on the user's PATH."""
    return {**os.environ, DEMO_COMMAND_VARIABLE: f"{how_started()} demo"}


def how_started() -> str:
    """This script as the user can type it again here: ``python3 scripts/dev.py``."""
    python = Path(sys.executable).name
    found = shutil.which(python)
    if not (found and Path(found).resolve() == Path(sys.executable).resolve()):
        python = sys.executable
    script = Path(__file__).resolve()
    try:
        shown = str(script.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(script)
    return f"{shlex.quote(python)} {shlex.quote(shown)}"


def run_child(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``command`` until it exits, passing it every SIGINT, SIGTERM and SIGHUP we get.

    The child runs in a session of its own, so a Ctrl-C in the terminal reaches it once,
    through us, as does a signal sent to our pid alone; either way we wait for it to stop
    (the demo then stops its Synapse). ``subprocess.call`` would kill it 0.25 s after an
    interrupt instead, leaving the demo's Synapse running.
    """
    child = subprocess.Popen(command, cwd=ROOT, start_new_session=True, env=env)

    def forward(signum: int, frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    passed = [sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig is not None]
    previous = {sig: signal.signal(sig, forward) for sig in passed}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code  # killed by a signal: as a shell reports it


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
    except subprocess.CalledProcessError as e:
        sys.exit(f"Set-up step failed: {' '.join(map(str, e.cmd))}")
