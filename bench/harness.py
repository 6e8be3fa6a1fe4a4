"""What every benchmark needs: a throwaway Synapse with the bridge registered, the bridge as
its own process (so its memory and CPU are its own), and a wait until its API answers."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clutto_bridge.config import EXAMPLE_CONFIG, ConfigFile, Settings  # noqa: E402
from clutto_bridge.crypto import KeysetFile  # noqa: E402
from clutto_bridge.demo.setup import POLICY_TEXTS  # noqa: E402
from clutto_bridge.demo.synapse import LocalSynapse, free_port  # noqa: E402
from clutto_bridge.registration import ensure_signing_key, registration  # noqa: E402


def quantile(values: list[float], q: float) -> float:
    """The value at fraction ``q`` of ``values`` in order (no interpolation): p50 is 0.5, p99 0.99."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ``python -m clutto_bridge`` on uvloop's event loop policy.
UVLOOP_MAIN = (
    "import runpy, sys, uvloop; uvloop.install(); sys.argv[0] = 'clutto_bridge'; "
    "runpy.run_module('clutto_bridge', run_name='__main__', alter_sys=True)"
)


@dataclass
class BridgeUnderTest:
    folder: Path
    file: ConfigFile
    settings: Settings
    process: subprocess.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.appservice.port}/_clutto/v1"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.provisioning.shared_secret}"}

    def start(self, uvloop: bool = False) -> None:
        """With ``uvloop``, the bridge runs on uvloop's event loop instead of asyncio's (a trial:
        the bridge itself does not depend on it)."""
        command = [sys.executable, "-m", "clutto_bridge", "-c", str(self.file.path)]
        if uvloop:
            command[1:3] = ["-c", UVLOOP_MAIN]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "bridge.log", "a"),
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def reconfigure(self, **values: Any) -> None:
        """Change config keys (dotted) for the next start."""
        self.file.load()
        for key, value in values.items():
            self.file[key] = value
        self.file.save()
        self.settings = self.file.settings()

    async def ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with http.get(f"{self.api}/teams", headers=self.auth) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the bridge did not start; see {self.folder / 'bridge.log'}")


def bridge_for(synapse: LocalSynapse, folder: Path, **values: Any) -> BridgeUnderTest:
    """Config (with fresh secrets) and registration of a bridge next to ``synapse``.

    Call before ``synapse.write_config([folder / "registration.yaml"])``.
    """
    path = folder / "config.yaml"
    path.write_text(EXAMPLE_CONFIG.read_text())
    file = ConfigFile(path)
    file.load()
    port = free_port()
    for key, value in {
        "homeserver.address": synapse.url,
        "homeserver.domain": synapse.server_name,
        "appservice.address": f"http://127.0.0.1:{port}",
        "appservice.port": port,
        "appservice.database": f"sqlite:{folder / 'clutto.db'}",
        "logging.level": "WARNING",
        "policy.consent.texts": str(POLICY_TEXTS),
        "security.signing_key": str(folder / "signing.key"),
        # Benchmarked members send without accepting the policy first (the default, block, holds them back).
        "policy.consent.mode": "remind",
        # The benchmarks seed and read rooms as plain clients; bench/e2ee.py measures encrypted rooms.
        "policy.encryption": "off",
        "security.keyset": str(folder / "keyset.json"),
        **values,
    }.items():
        file[key] = value
    file.fill_generated_secrets()
    file.save()
    KeysetFile(file["security.keyset"]).ensure(0)
    settings = file.settings()
    ensure_signing_key(settings.security.signing_key)
    with open(folder / "registration.yaml", "w") as stream:
        YAML().dump(registration(settings), stream)
    return BridgeUnderTest(folder, file, settings)


async def make_bot_admin(synapse: LocalSynapse, bridge: BridgeUnderTest) -> str:
    """The operator's set-up step; returns an admin's access token."""
    a = bridge.settings.appservice
    bot = await synapse.register_appservice_user(a.as_token, a.bot_username)
    admin = await synapse.register_user("bench-admin", admin=True)
    await synapse.make_admin(admin.access_token, bot)
    return admin.access_token


# Where ``--synapse-db postgres`` creates its throwaway databases (trust auth, as in the tests).
POSTGRES = os.environ.get("CLUTTO_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
_created: list[str] = []


def add_synapse_db_option(parser: Any) -> None:
    parser.add_argument(
        "--synapse-db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="Synapse's database; postgres uses CLUTTO_BENCH_POSTGRES (default 127.0.0.1:5432)",
    )


async def synapse_database(kind: str) -> dict[str, Any]:
    """Extra homeserver.yaml for Synapse's database: nothing for SQLite (the default), else a
    fresh PostgreSQL database with the C collation Synapse requires."""
    if kind == "sqlite":
        return {}
    name = await throwaway_database("synapse_bench", "TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C' ENCODING 'UTF8'")
    target = POSTGRES.rsplit("/", 1)[0].removeprefix("postgres://").removeprefix("postgresql://")
    user, _, hostport = target.rpartition("@")
    host, _, port = hostport.partition(":")
    args = {
        "user": user or "postgres",
        "database": name,
        "host": host,
        "port": int(port or 5432),
        "cp_min": 2,
        "cp_max": 10,
    }
    return {"database": {"name": "psycopg2", "args": args}}


async def throwaway_database(prefix: str, options: str = "") -> str:
    """A new PostgreSQL database on ``POSTGRES``, its name; ``drop_synapse_databases`` drops it."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(POSTGRES)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" {options}')
    finally:
        await conn.close()
    _created.append(name)
    return name


async def drop_synapse_databases() -> None:
    """Drop the databases ``synapse_database`` created (call once Synapse has stopped)."""
    if not _created:
        return
    conn = await asyncpg.connect(POSTGRES)
    try:
        while _created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{_created.pop()}"')
    finally:
        await conn.close()


class Snapshot:
    """Copies of a stopped Synapse's database and the bridge's SQLite file, so that every
    round of a benchmark starts from the same data (not from a room filled the same way)."""

    def __init__(self, synapse: LocalSynapse, synapse_extra: dict[str, Any], bridge_db: Path) -> None:
        self.synapse_db = synapse.folder / "homeserver.db"
        self.postgres = synapse_extra.get("database", {}).get("args", {}).get("database")
        self.files = [bridge_db] + ([] if self.postgres else [self.synapse_db])
        self.folder = synapse.folder.parent / "snapshot"

    @staticmethod
    def _family(path: Path) -> list[Path]:
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    async def take(self) -> None:
        """Call with Synapse and the bridge stopped."""
        self.folder.mkdir(exist_ok=True)
        for path in self.files:
            for part in self._family(path):
                if part.exists():
                    shutil.copy2(part, self.folder / part.name)
        if self.postgres:
            await self._postgres(f'CREATE DATABASE "{self.postgres}_snap" TEMPLATE "{self.postgres}"')
            _created.append(f"{self.postgres}_snap")

    async def restore(self) -> None:
        """Call with Synapse and the bridge stopped."""
        for path in self.files:
            for part in self._family(path):
                part.unlink(missing_ok=True)
                if (self.folder / part.name).exists():
                    shutil.copy2(self.folder / part.name, part)
        if self.postgres:
            await self._postgres(
                f'DROP DATABASE "{self.postgres}"', f'CREATE DATABASE "{self.postgres}" TEMPLATE "{self.postgres}_snap"'
            )

    @staticmethod
    async def _postgres(*statements: str) -> None:
        conn = await asyncpg.connect(POSTGRES)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()


class Client:
    """A Matrix user as their client calls the client-server API."""

    def __init__(self, http: aiohttp.ClientSession, base: str, user_id: str, token: str) -> None:
        self.http, self.base, self.user_id, self.token = http, base, user_id, token

    async def call(self, method: str, path: str, body: Any = None, ok: bool = True, **params: Any) -> dict:
        """The answer's JSON; with ``ok=False`` an error is returned (with its ``status``), not raised."""
        async with self.http.request(
            method,
            f"{self.base}/_matrix/client{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as r:
            data = await r.json(content_type=None)
            if ok and r.status >= 400:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return {"status": r.status, **data} if not ok else data


@asynccontextmanager
async def synapse_with_bridge(
    folder: Path, synapse_extra: dict[str, Any] | None = None, **values: Any
) -> AsyncIterator[tuple[LocalSynapse, BridgeUnderTest]]:
    """A throwaway Synapse in ``folder`` with the bridge registered and its bot made admin (the
    bridge is configured, not started); both are stopped on the way out."""
    synapse = LocalSynapse(folder / "synapse")
    bridge = bridge_for(synapse, folder, **values)
    synapse.write_config([folder / "registration.yaml"], synapse_extra)
    await asyncio.to_thread(synapse.start)
    try:
        await make_bot_admin(synapse, bridge)
        yield synapse, bridge
    finally:
        bridge.stop()
        synapse.stop()
