"""Run a throwaway Synapse in a folder: for the demo and for the integration tests.

Synapse must be importable (the ``demo`` or ``test`` extra). It listens on 127.0.0.1 only,
uses SQLite, has federation and outgoing requests off, and relaxed rate limits so that
a bot and a handful of users can work quickly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from clutto_bridge.doctor.checks import E2EE_EXPERIMENTAL_FEATURES

_LIMIT = {"per_second": 1000, "burst_count": 1000}
# Keys of homeserver.yaml given only by some callers (``extra``): removed when not given now.
_OPTIONAL_KEYS = ("modules",)


def synapse_available() -> bool:
    try:
        import synapse  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalUser:
    user_id: str
    password: str
    access_token: str


class SynapseStopped(RuntimeError):
    """``start`` was refused or abandoned because ``stop`` was called."""


class LocalSynapse:
    """One Synapse process with its config, database, media and log in ``folder``.

    Synapse leads a process group of its own (a new session), so a Ctrl-C in the terminal
    reaches only our process, which then stops Synapse itself. Once ``stop`` has been
    called, ``start`` refuses: a start still running in another thread can never leave a
    Synapse behind after its stop.
    """

    def __init__(
        self, folder: Path, port: int | None = None, server_name: str = "localhost", env: dict[str, str] | None = None
    ):
        """``env``: extra environment for Synapse (a test's ``SSL_CERT_FILE``: the CA it trusts)."""
        self.folder = Path(folder)
        self.env = {**os.environ, **(env or {})}
        self.port = port or free_port()
        self.server_name = server_name
        self.url = f"http://127.0.0.1:{self.port}"
        self.shared_secret = secrets.token_hex(24)
        self.config_path = self.folder / "homeserver.yaml"
        self.log_path = self.folder / "homeserver.log"
        self.pid_path = self.folder / "homeserver.pid"
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def write_config(self, registrations: list[Path], extra: dict | None = None) -> None:
        """Write homeserver.yaml; a folder that already has one keeps its secrets (and so
        its accounts, tokens and rooms) with the port and registrations given now, and the
        keys we do not write ourselves (what ``doctor --fix`` set). Files whose content
        would not change are left as they are, comments included."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log_config = self.folder / "log.yaml"
        _update(log_config, _log_config(self.log_path))
        previous = load_yaml(self.config_path) if self.config_path.exists() else {}
        self.shared_secret = previous.get("registration_shared_secret", self.shared_secret)
        config = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(self.pid_path),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client", "openid"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.folder / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(self.folder / "media"),
            "signing_key_path": str(self.folder / "signing.key"),
            "registration_shared_secret": self.shared_secret,
            "macaroon_secret_key": previous.get("macaroon_secret_key") or secrets.token_hex(24),
            "form_secret": previous.get("form_secret") or secrets.token_hex(24),
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            # Synapse replays an identical /sync for 2 minutes by default; a client polling
            # for new invites would not see them.
            "caches": {"sync_response_cache_duration": 0},
            "app_service_config_files": [str(p) for p in registrations],
            # The bot's E2EE device (what `clutto-bridge doctor` asks of a real homeserver).
            "experimental_features": dict(E2EE_EXPERIMENTAL_FEATURES),
            "rc_message": _LIMIT,
            "rc_registration": _LIMIT,
            "rc_login": {"address": _LIMIT, "account": _LIMIT, "failed_attempts": _LIMIT},
            "rc_joins": {"local": _LIMIT, "remote": _LIMIT},
            "rc_joins_per_room": _LIMIT,
            "rc_invites": {"per_room": _LIMIT, "per_user": _LIMIT, "per_issuer": _LIMIT},
            "rc_admin_redaction": _LIMIT,
            "rc_3pid_validation": _LIMIT,
            "rc_room_creation": _LIMIT,
            "rc_presence": {"per_user": _LIMIT},
        }
        config.update(extra or {})
        _update(self.config_path, config, drop=[key for key in _OPTIONAL_KEYS if key not in config])

    def start(self, timeout: float = 90.0) -> None:
        """Generate keys, start Synapse and wait until it answers."""
        if self._stopping:
            raise SynapseStopped("Synapse was stopped before it started")
        subprocess.run(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path), "--generate-keys"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.folder,
        )
        with self._lock:
            if self._stopping:
                raise SynapseStopped("Synapse was stopped before it started")
            with open(self.folder / "stdio.log", "ab") as stdio:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                    stdout=stdio,
                    stderr=subprocess.STDOUT,
                    cwd=self.folder,
                    env=self.env,
                    start_new_session=True,
                )
            # Synapse writes its pid_file only when it daemonizes: written here, so a later
            # start can find (and stop) a Synapse that an interrupted demo left running.
            self.pid_path.write_text(f"{self.process.pid}\n")
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        self._wait_answering("Synapse", self.url, self.process, timeout)

    def _wait_answering(self, name: str, url: str, process: subprocess.Popen | None, timeout: float) -> None:
        """Until ``url``/health answers 200; ``process`` exiting (or ``stop``) ends the wait early.
        Also used for the worker processes of the tests' worker-mode Synapse."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._stopping:
                raise SynapseStopped(f"{name} was stopped while starting")
            if process and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail_log()}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer within {timeout:.0f}s:\n{self.tail_log()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Synapse and wait until it has exited: SIGTERM to its process group, SIGKILL
        after ``timeout``. Safe to call again, and from another thread than ``start``."""
        with self._lock:
            self._stopping = True
            process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Synapse leads its group; anything it left in the group goes with it.
        _signal_group(process.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)

    def restart(self, timeout: float = 90.0) -> LocalSynapse:
        """Stop this Synapse cleanly and start another on the same folder, port and config, as
        an operator's restart does; the new one is returned (a stopped one never starts again)."""
        self.stop()
        again = LocalSynapse(self.folder, port=self.port, server_name=self.server_name)
        again.env, again.shared_secret = self.env, self.shared_secret
        again.start(timeout)
        return again

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail_log(self, lines: int = 80) -> str:
        parts = []
        for path in (self.folder / "stdio.log", self.log_path):
            if path.exists():
                parts.append(
                    f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(parts)

    async def register_user(self, localpart: str, password: str | None = None, admin: bool = False) -> LocalUser:
        """Create an account through the shared-secret registration admin API."""
        password = password or secrets.token_urlsafe(12)
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as session:
            async with session.get(endpoint) as resp:
                nonce = (await resp.json())["nonce"]
            message = b"\x00".join(
                [nonce.encode(), localpart.encode(), password.encode(), b"admin" if admin else b"notadmin"]
            )
            mac = hmac.new(self.shared_secret.encode(), message, hashlib.sha1).hexdigest()
            body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac}
            async with session.post(endpoint, json=body) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"registering {localpart} failed: {resp.status} {data}")
        return LocalUser(data["user_id"], password, data["access_token"])

    async def register_appservice_user(self, as_token: str, localpart: str) -> str:
        """Register a user in an appservice's namespace (the bot) before the bridge runs."""
        # inhibit_login: no access token (required of an appservice with MSC4190, which manages its devices)
        body = {"type": "m.login.application_service", "username": localpart, "inhibit_login": True}
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}/_matrix/client/v3/register", json=body, headers={"Authorization": f"Bearer {as_token}"}
            ) as resp:
                data = await resp.json()
                if resp.status != 200 and data.get("errcode") != "M_USER_IN_USE":
                    raise RuntimeError(f"registering {localpart} failed: {resp.status} {data}")
        return f"@{localpart}:{self.server_name}"

    async def make_admin(self, admin_token: str, user_id: str) -> None:
        """Flag a user (the bridge bot) as homeserver admin, as an operator would."""
        async with aiohttp.ClientSession() as session:
            async with session.put(
                f"{self.url}/_synapse/admin/v2/users/{user_id}",
                json={"admin": True},
                headers={"Authorization": f"Bearer {admin_token}"},
            ) as resp:
                if resp.status not in (200, 201):
                    raise RuntimeError(f"making {user_id} admin failed: {resp.status} {await resp.text()}")


def _log_config(path: Path) -> dict:
    return {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise", "filename": str(path)}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # the group is empty
        pass


def load_yaml(path: Path) -> dict:
    with open(path) as stream:
        return YAML(typ="safe").load(stream) or {}


def _update(path: Path, data: dict, drop: list[str] | tuple[str, ...] = ()) -> bool:
    """Set ``data``'s keys in the YAML file at ``path`` and remove the keys in ``drop``,
    keeping its other keys and its comments; True if the file was written, which it is only
    when its content changes."""
    yaml = YAML()
    loaded = yaml.load(path.read_text()) if path.exists() else None
    changed = not isinstance(loaded, dict)
    current: dict = loaded if isinstance(loaded, dict) else CommentedMap()
    for key, value in data.items():
        if key not in current or current[key] != value:
            current[key] = value
            changed = True
    for key in drop:
        if key in current:
            del current[key]
            changed = True
    if changed:
        with open(path, "w") as stream:
            yaml.dump(current, stream)
    return changed
