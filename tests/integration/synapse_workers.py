"""Synapse in worker mode, for the scale-out test (tests/integration/test_synapse_workers.py).

The topology a large installation runs, small: on PostgreSQL, a main process, a generic
worker that serves the client API and sends the appservice its transactions
(``notify_appservices_from_worker``), and an event persister that writes every event
(``stream_writers.events``), kept in step over Redis replication. A router in front stands
in for the reverse proxy an operator configures from Synapse's worker endpoint list: it
sends the admin API to the main process, every other request to the generic worker, and
what the worker does not serve (it answers ``M_UNRECOGNIZED``) to the main process too.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from clutto_bridge.demo.synapse import LocalSynapse, _log_config, _signal_group, _update, free_port
from tests.integration.front import ThreadedProxy

# Hop-by-hop and length headers are the router's own business, as they are a proxy's.
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class Redis:
    """A redis-server of the test's own on a free port, keeping nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}")
                time.sleep(0.05)
        raise RuntimeError("redis-server did not listen within 15 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Router(ThreadedProxy):
    """The reverse proxy: the generic worker first, the main process for what it does not serve."""

    name = "synapse-router"

    def __init__(self, port: int, worker: str, main: str) -> None:
        super().__init__(port)
        self.worker, self.main = worker, main
        self.to_worker = self.to_main = 0

    def session(self) -> aiohttp.ClientSession:
        # No total timeout: /sync long-polls.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if request.path.startswith("/_synapse/admin/"):  # the admin API is the main process's
            status, answer_headers, content = 404, {}, b'"M_UNRECOGNIZED"'
        else:
            try:
                status, answer_headers, content = await self._ask(self.worker, request, headers, body)
            except aiohttp.ClientConnectionError:  # the worker is not up yet (start-up only)
                status, answer_headers, content = 404, {}, b'"M_UNRECOGNIZED"'
        if status in (404, 405) and b'"M_UNRECOGNIZED"' in content:
            status, answer_headers, content = await self._ask(self.main, request, headers, body)
            self.to_main += 1
        else:
            self.to_worker += 1
        return web.Response(status=status, body=content, headers=answer_headers)

    async def _ask(self, base: str, request: web.Request, headers: dict, body: bytes):
        async with self._session.request(
            request.method, base + request.path_qs, data=body, headers=headers, allow_redirects=False
        ) as resp:
            kept = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return resp.status, kept, await resp.read()


class WorkerSynapse(LocalSynapse):
    """Main process, generic worker and event persister on one PostgreSQL database, with Redis.

    ``url`` is the router's: clients, the bridge and the tests' admin calls all go through it.
    """

    WORKERS = ("generic1", "persister1")

    def __init__(self, folder: Path, redis_port: int) -> None:
        super().__init__(folder)
        self.redis_port = redis_port
        self.main_port = free_port()
        self.replication = {"main": free_port(), "generic1": free_port(), "persister1": free_port()}
        self.client_ports = {"generic1": free_port(), "persister1": free_port()}
        self.router = Router(
            self.port, f"http://127.0.0.1:{self.client_ports['generic1']}", f"http://127.0.0.1:{self.main_port}"
        )
        self.workers: dict[str, subprocess.Popen] = {}

    def write_config(self, registrations: list[Path], extra: dict | None = None) -> None:
        replication = {
            "port": self.replication["main"],
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "resources": [{"names": ["replication"]}],
        }
        client = {
            "port": self.main_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": False,
            "x_forwarded": False,
            "resources": [{"names": ["client", "openid"], "compress": False}],
        }
        topology = {
            "listeners": [client, replication],
            "redis": {"enabled": True, "host": "127.0.0.1", "port": self.redis_port},
            "instance_map": {name: {"host": "127.0.0.1", "port": port} for name, port in self.replication.items()},
            "stream_writers": {"events": ["persister1"]},
            "notify_appservices_from_worker": "generic1",
        }
        super().write_config(registrations, {**(extra or {}), **topology})
        for name in self.WORKERS:
            _update(self.folder / f"{name}.log.yaml", _log_config(self.worker_log(name)))
            _update(
                self.folder / f"{name}.yaml",
                {
                    "worker_app": "synapse.app.generic_worker",
                    "worker_name": name,
                    "worker_log_config": str(self.folder / f"{name}.log.yaml"),
                    "worker_listeners": [
                        {
                            "type": "http",
                            "port": self.replication[name],
                            "bind_addresses": ["127.0.0.1"],
                            "resources": [{"names": ["replication"]}],
                        },
                        {
                            "type": "http",
                            "port": self.client_ports[name],
                            "bind_addresses": ["127.0.0.1"],
                            "resources": [{"names": ["client"]}],
                        },
                    ],
                },
            )

    def start(self, timeout: float = 120.0) -> None:
        self.router.start()
        super().start(timeout)  # the main process; until the worker answers, the router asks main
        for name in self.WORKERS:
            with open(self.folder / f"{name}.stdio.log", "ab") as stdio:
                self.workers[name] = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "synapse.app.generic_worker",
                        "-c",
                        str(self.config_path),
                        "-c",
                        str(self.folder / f"{name}.yaml"),
                    ],
                    stdout=stdio,
                    stderr=subprocess.STDOUT,
                    cwd=self.folder,
                    env=self.env,
                    start_new_session=True,
                )
        for name in self.WORKERS:
            self._wait_answering(
                f"worker {name}", f"http://127.0.0.1:{self.client_ports[name]}", self.workers[name], timeout
            )

    def worker_log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def stop(self, timeout: float = 20.0) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                _signal_group(process.pid, subprocess.signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, subprocess.signal.SIGKILL)
                process.wait()
        super().stop(timeout)
        self.router.stop()

    def restart(self, timeout: float = 90.0) -> LocalSynapse:
        raise NotImplementedError("the worker-mode test does not restart Synapse")

    def tail_log(self, lines: int = 80) -> str:
        parts = [super().tail_log(lines)]
        paths = [p for name in self.WORKERS for p in (self.folder / f"{name}.stdio.log", self.worker_log(name))]
        for path in paths:
            if path.exists():
                parts.append(
                    f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(parts)
