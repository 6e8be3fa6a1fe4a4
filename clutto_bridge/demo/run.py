"""``clutto-bridge demo``: Synapse and the bridge on this machine, with a demo team to look at.

A demo in a folder of the user's choice (``--dir``) can be resumed: the folder keeps the
homeserver, the bridge's config and database, and ``demo.json`` with the demo users'
credentials, so a second run shows the same team to the same users. ``--fresh`` clears it.

Shutdown is certain: whatever happens while starting, running or stopping the bridge,
Synapse is stopped and waited for (its process group killed after a timeout) before
anything is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from clutto_bridge.demo import stale
from clutto_bridge.demo.stale import TEMPORARY_PREFIX, FolderLock
from clutto_bridge.demo.synapse import LocalSynapse, LocalUser, free_port, synapse_available

if TYPE_CHECKING:  # imported where used: the demo starts before it loads the bridge
    from clutto_bridge.app import Bridge
    from clutto_bridge.config import Settings
    from clutto_bridge.db.team import Team
    from clutto_bridge.domain.service import TeamView

INSTALL_HINT = (
    "The demo needs Synapse, which comes with the 'demo' extra:\n"
    "    pip install 'clutto-bridge[demo]'\n"
    "or, from a checkout:  python3 scripts/dev.py demo"
)
DEFAULT_PORT = 8008
PORT_VARIABLE = "CLUTTO_DEMO_PORT"  # instead of DEFAULT_PORT (tests give each demo a free port)
# How the user started the demo, for the hints that tell them what to run next; scripts/dev.py
# sets it, since the clutto-bridge it runs (in .venv/bin) is not on the user's PATH.
COMMAND_VARIABLE = "CLUTTO_DEMO_COMMAND"
STATE_FILE = "demo.json"
TEAM_NAME = "Demo Team"
BRIDGE_STOP_TIMEOUT = 20.0  # the bridge's own grace for commands is 5 s
SYNAPSE_STOP_TIMEOUT = 20.0

log = logging.getLogger("clutto.demo")


@dataclass
class DemoState:
    """What a resumed demo needs to show the same things: written after every step."""

    port: int | None = None
    users: dict[str, dict[str, str]] = field(default_factory=dict)  # localpart -> user_id, password
    bot_is_admin: bool = False
    bob_invited: bool = False

    @classmethod
    def load(cls, folder: Path) -> DemoState:
        path = folder / STATE_FILE
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, folder: Path) -> None:
        path = folder / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)  # the demo users' passwords


def run_demo(folder: Path | None, port: int | None, fresh: bool = False) -> int:
    if not synapse_available():
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    default_port = _port_number(os.environ.get(PORT_VARIABLE) or str(DEFAULT_PORT))
    if default_port is None:
        print(f"{PORT_VARIABLE}={os.environ[PORT_VARIABLE]!r} is not a port number (1-65535).", file=sys.stderr)
        return 1
    temporary = folder is None
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix=TEMPORARY_PREFIX))
    else:
        folder = folder.resolve()
        problem = _prepare_folder(folder, fresh)
        if problem:
            print(problem, file=sys.stderr)
            return 1
    lock = FolderLock(folder)
    if not lock.acquire():  # another demo started in this folder a moment ago
        print(_still_running(folder, lock.holder()), file=sys.stderr)
        return 1
    state = DemoState.load(folder)
    port = port or state.port or default_port
    synapse = LocalSynapse(folder / "synapse", port=port)
    try:
        if _port_taken(port) and not _stop_temporary_demo_on(port, folder):
            print(_port_in_use(port), file=sys.stderr)
            return 1
        state.port = port
        state.save(folder)  # marks the folder as a demo's, so a later run may resume or clear it
        from clutto_bridge.logs import setup_logging

        setup_logging("INFO", str(folder / "bridge.log"))
        terminal = logging.getLogger().handlers[0]
        terminal.setLevel(logging.WARNING)  # keep the terminal for the summary
        terminal.addFilter(_routine_for_the_demo)
        try:
            return asyncio.run(_demo(folder, state, synapse, keep=not temporary))
        except KeyboardInterrupt:  # before our signal handlers were installed
            return 0
        except Exception as e:
            log.debug("Demo failed", exc_info=True)
            hint = "" if temporary else f"\nTo start over: {demo_command()} --dir {shlex.quote(str(folder))} --fresh"
            print(f"The demo failed: {type(e).__name__}: {e}\nSee {folder / 'bridge.log'}.{hint}", file=sys.stderr)
            return 1
    finally:
        with _signals_deferred():
            synapse.stop(SYNAPSE_STOP_TIMEOUT)  # a no-op when the demo already stopped it
            lock.release()
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)


def demo_command(argv0: str | None = None) -> str:
    """The command that started this demo, as the user can type it again: what scripts/dev.py
    says it was, else ``clutto-bridge demo`` when that is the one on the PATH, else the
    program's path, or ``python -m clutto_bridge demo``."""
    given = os.environ.get(COMMAND_VARIABLE, "").strip()
    if given:
        return given
    program = Path(argv0 if argv0 is not None else sys.argv[0])
    if program.name == "__main__.py":
        python = Path(sys.executable).name
        return (
            f"{python if _on_path(python, Path(sys.executable)) else shlex.quote(sys.executable)} -m clutto_bridge demo"
        )
    if _on_path(program.name, program):
        return f"{program.name} demo"
    return f"{shlex.quote(str(program.absolute()))} demo"


def _on_path(name: str, program: Path) -> bool:
    found = shutil.which(name)
    return found is not None and program.exists() and Path(found).resolve() == program.resolve()


def _routine_for_the_demo(record: logging.LogRecord) -> bool:
    """False for the warnings of the bot's Olm machine: the demo's users have no devices
    until they sign in with an E2EE client, so sharing a room key finds none (bridge.log has them)."""
    return not (record.name.startswith("clutto.e2ee.olm") and record.levelno < logging.ERROR)


def _prepare_folder(folder: Path, fresh: bool) -> str | None:
    """Clear a demo folder for ``--fresh``; refuse a folder with files that are not a demo's."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is not a folder."
    if not folder.exists() or not any(e.name != stale.LOCK_FILE for e in folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        return None
    if not (folder / STATE_FILE).exists():
        return f"{folder} has files but no {STATE_FILE}, so it is not a demo's folder; pick an empty or new one."
    if stale.is_locked(folder):
        return _still_running(folder, stale.FolderLock(folder).holder())
    problem = _stop_stale_synapse(folder)
    if problem:
        return problem
    if fresh:
        for entry in folder.iterdir():
            if entry.name == stale.LOCK_FILE:
                continue  # held by the demo about to start here
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return None


def _stop_stale_synapse(folder: Path) -> str | None:
    """Stop the Synapse an interrupted demo left running in ``folder`` (no demo runs there
    now); a refusal naming the process when it cannot be stopped or is not certainly ours."""
    pid = stale.synapse_of(folder)
    if pid is not None:
        if not stale.stop(pid, folder / "synapse" / "homeserver.yaml", SYNAPSE_STOP_TIMEOUT):
            return (
                f"The Synapse an earlier demo left running in {folder} (pid {pid}) could not be stopped; "
                f"stop it with: kill {pid}"
            )
        print(f"Stopped the Synapse (pid {pid}) that an interrupted demo left running in {folder}.", flush=True)
        return None
    others = _synapse_runs_in(folder)
    if others:
        pids = " ".join(map(str, others))
        return (
            f"A Synapse of {folder} is running (pid {pids}) without its pid file, so it is left alone; "
            f"stop it with: kill {pids}"
        )
    return None


def _stop_temporary_demo_on(port: int, ours: Path) -> bool:
    """Stop a Synapse an interrupted demo without ``--dir`` left on ``port`` and delete its
    folder; True if the port is free now."""
    for folder in stale.temporary_demos():
        if folder == ours or not stale.listens_on(folder, port) or stale.is_locked(folder):
            continue
        if _stop_stale_synapse(folder) is None:
            shutil.rmtree(folder, ignore_errors=True)
    return not _port_taken(port)


def _port_in_use(port: int) -> str:
    """The refusal, naming the demo whose Synapse holds the port when it is one of ours."""
    for folder in stale.temporary_demos():
        pid = stale.synapse_of(folder)
        if pid is not None and stale.listens_on(folder, port):
            holder = stale.FolderLock(folder).holder()
            return (
                f"Port {port} is in use by the Synapse (pid {pid}) of the demo running in {folder}; stop that "
                f"demo with Ctrl-C in its terminal or: kill -INT {holder}. Or pick another port with --port."
            )
    return f"Port {port} is in use; pick another with --port (or {PORT_VARIABLE})."


def _still_running(folder: Path, holder: str) -> str:
    return (
        f"A demo in {folder} is still running (pid {holder}); "
        f"stop it with Ctrl-C in its terminal or: kill -INT {holder}"
    )


def _synapse_runs_in(folder: Path) -> list[int]:
    marker = str(folder / "synapse").encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _port_number(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """A second Ctrl-C must not cut the clean-up short; it only says that we are on it."""

    def note(signum: int, frame: FrameType | None) -> None:
        print("Still stopping Synapse …", file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _demo(folder: Path, state: DemoState, synapse: LocalSynapse, keep: bool) -> int:
    from clutto_bridge.app import Bridge
    from clutto_bridge.demo.setup import bridge_settings, homeserver_modules, reuse_bridge_config, write_registration

    main = asyncio.current_task()
    assert main is not None, "run by asyncio.run"
    interrupted = stopping = False

    def on_signal() -> None:
        nonlocal interrupted
        if not interrupted and not stopping:
            interrupted = True
            main.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    resumed = (folder / "config.yaml").exists()
    if resumed:
        settings = reuse_bridge_config(folder, synapse, lambda port: not _port_taken(port)).settings()
    else:
        settings = bridge_settings(folder, synapse, free_port())
    registration = write_registration(folder, settings)
    modules = homeserver_modules(settings)
    synapse.write_config([registration], modules)
    _doctor(settings, synapse, registration)
    bridge: Bridge | None = None
    try:
        verb = "Resuming the demo" if resumed else "Starting Synapse"
        print(f"{verb} on {synapse.url} (files in {folder}) …", flush=True)
        await asyncio.to_thread(synapse.start)
        await _make_bot_admin(folder, state, synapse, settings)
        bridge = Bridge(settings)
        await bridge.start()
        alice = await _user(folder, state, synapse, "alice")
        bob = await _user(folder, state, synapse, "bob")
        team = await _team(bridge, alice.user_id)
        if not state.bob_invited:
            await bridge.members.invite(team, bob.user_id, "member", actor=alice.user_id)
            state.bob_invited = True
            state.save(folder)
        view = await bridge.teams.view(team)
        _print_summary(
            synapse, settings, [alice, bob], view, folder if keep else None, modules, bridge.device.device_id
        )
        await asyncio.Event().wait()  # until a signal cancels us
    except asyncio.CancelledError:
        if not interrupted:
            raise
        main.uncancel()
    finally:
        stopping = True  # from here on a signal changes nothing: we are already stopping
        print("\nStopping the bridge and Synapse …", flush=True)
        if bridge is not None:
            await _stop_bridge(bridge)
        await asyncio.to_thread(synapse.stop, SYNAPSE_STOP_TIMEOUT)
    return 0


def _doctor(settings: Settings, synapse: LocalSynapse, registration: Path) -> None:
    """What an operator runs once: ``clutto-bridge doctor --fix`` on the homeserver's config, so
    the demo's Synapse keeps log data and profiles as the policy says."""
    from clutto_bridge.doctor import doctor

    report = doctor(settings, synapse.config_path, fix=True, registration=registration, ask_homeserver=False)
    failing = [r.check for r in report.results if r.status.value == "FAIL"]
    verdict = f"still failing: {', '.join(failing)}" if failing else "every check passes"
    if report.changed:
        print(
            f"doctor --fix changed {len(report.changed)} setting(s) of the homeserver's config "
            f"(backup: {', '.join(b.name for b in report.backups)}); {verdict}.",
            flush=True,
        )
    else:
        print(f"doctor: the homeserver's config needed no change; {verdict}.", flush=True)


async def _stop_bridge(bridge: Bridge) -> None:
    """Give the bridge its grace, but never let a slow or failing stop keep Synapse running."""
    try:
        await asyncio.wait_for(bridge.stop(grace=5), BRIDGE_STOP_TIMEOUT)
    except TimeoutError:
        log.warning("The bridge did not stop within %.0f s; stopping Synapse anyway", BRIDGE_STOP_TIMEOUT)
    except Exception:
        log.warning("Stopping the bridge failed; stopping Synapse anyway", exc_info=True)


async def _make_bot_admin(folder: Path, state: DemoState, synapse: LocalSynapse, settings: Settings) -> None:
    """As an operator would: the bot becomes a homeserver admin before the bridge starts."""
    bot = await synapse.register_appservice_user(settings.appservice.as_token, settings.appservice.bot_username)
    if state.bot_is_admin:
        return
    admin = await synapse.register_user("demo-admin", admin=True)
    await synapse.make_admin(admin.access_token, bot)
    state.bot_is_admin = True
    state.save(folder)


async def _user(folder: Path, state: DemoState, synapse: LocalSynapse, localpart: str) -> LocalUser:
    known = state.users.get(localpart)
    if known:
        return LocalUser(known["user_id"], known["password"], access_token="")
    user = await synapse.register_user(localpart)
    state.users[localpart] = {"user_id": user.user_id, "password": user.password}
    state.save(folder)
    return user


async def _team(bridge: Bridge, owner: str) -> Team:
    """The demo team: the one a previous run made (finished by the bridge's start if that
    run was interrupted while making it), or a new one."""
    for team in await bridge.teams.of_user(owner):
        if team.name == TEAM_NAME:
            return team
    return await bridge.teams.create(TEAM_NAME, owner=owner)


def _encryption_lines(settings: Settings, device_id: str | None) -> list[str]:
    """What the demo says of end-to-end encryption: on or off, and the bot's device."""
    mode = settings.policy.encryption
    if mode == "off":
        return ["  End-to-end encryption: off (policy.encryption), so Synapse stores messages in plaintext."]
    if device_id is None:
        return [
            f"  End-to-end encryption: rooms are created encrypted (policy.encryption: {mode}), but the bot has "
            "no device (see the bridge log), so it cannot read them."
        ]
    return [
        f"  End-to-end encryption: team rooms and chats with the bot are encrypted (policy.encryption: {mode});",
        f"  the bot is device {device_id}, cross-signed by its own identity, so Element shows it verified.",
    ]


def _print_summary(
    synapse: LocalSynapse,
    settings: Settings,
    users: list[LocalUser],
    view: TeamView,
    kept_in: Path | None,
    modules: dict[str, Any],
    device_id: str | None = None,
) -> None:
    rooms = ", ".join(r.name for r in view.rooms)
    lines = [
        "",
        "clutto-bridge demo is running.",
        f"  Homeserver URL for any Matrix client: {synapse.url}",
        "  (in Element: Sign in > Edit homeserver > enter the URL above)",
        "",
        "  Demo users:",
        *[f"    {u.user_id}  password: {u.password}" for u in users],
        "",
        f"  Team '{view.team.name}' (space {view.team.space_id}) with rooms: {rooms}",
        "  Accept the invites to see the space and its rooms.",
        *(
            [
                "  Before writing in the team's rooms, each member accepts the privacy policy: the bot sends it; "
                "answer 'accept'."
            ]
            if settings.consent.mode == "block"
            else []
        ),
        f"  Talk to the bot: start a direct chat with {settings.bot_mxid} and send 'help'.",
        *_encryption_lines(settings, device_id),
        f"  Provisioning API: http://127.0.0.1:{settings.appservice.port}/_clutto/v1 "
        f"(Bearer {settings.provisioning.shared_secret})",
        *(
            [
                f"  Metrics: http://127.0.0.1:{settings.appservice.port}/_clutto/metrics "
                f"(Bearer {settings.analytics.metrics_secret})"
            ]
            if settings.analytics.metrics_enabled
            else []
        ),
        *(
            [
                f"  Privacy portal: send 'portal' to the bot for a one-time sign-in link to "
                f"{settings.portal.base_url(settings.appservice.url)}/"
            ]
            if settings.portal.enabled
            else []
        ),
        "  Enforcement before the write: "
        + (
            "synapse-http-antispam asks the bridge before Synapse stores joins, invites, state events and messages."
            if modules
            else "off (synapse-http-antispam is not installed; the bridge enforces after the fact)."
        ),
        f"  Email (headers only): send 'email on' to the bot, then mail the address it gives to SMTP "
        f"127.0.0.1:{settings.email.port}.",
        "",
        f"  Run `{demo_command()} --dir {shlex.quote(str(kept_in))}` again to resume this demo; add --fresh to start over."
        if kept_in
        else "  Its files go when it stops; with --dir FOLDER they stay, and the demo can be resumed.",
        "",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)
