"""Scale-out on Synapse's own terms: the bridge against a worker-mode Synapse (issue 28).

Synapse here is what a large installation runs (tests/integration/synapse_workers.py): on
PostgreSQL, a main process, a generic worker serving the client API and pushing the
appservice its transactions, and an event persister writing every event, over Redis. The
enforcement module runs on the process that creates each event, the worker.

The tests are the suite's own team, command, before-the-write and retention tests,
collected again here: fixtures of this module put them on the worker-mode Synapse with the
bridge on PostgreSQL. They check correctness, not speed. A last test checks that the
topology really was in use: the appservice transactions came from the worker, the admin
API's purge from the main process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from clutto_bridge.demo.synapse import free_port
from clutto_bridge.web.antispam import module_config
from tests.integration.conftest import (
    Bridges,
    Homeserver,
    create_postgres_database,
    drop_postgres_database,
    start_homeserver,
    synapse_postgres_config,
)
from tests.integration.synapse_workers import Redis, WorkerSynapse, redis_server_binary
from tests.integration.test_antispam import (  # noqa: F401  (collected here on the worker-mode Synapse)
    Guarded,
    guarded_bridges,
    person,
    test_outsider_cannot_be_invited_or_join_and_a_member_added_with_the_bridge_can,
    test_power_levels_by_hand_are_refused_and_a_role_change_with_the_bridge_passes,
)
from tests.integration.test_members import test_removed_member_is_kicked_with_reason_and_cannot_rejoin  # noqa: F401
from tests.integration.test_retention import (  # noqa: F401
    test_legal_hold_keeps_a_room_untouched,
    test_sweep_removes_old_events_and_keeps_window,
)
from tests.integration.test_team_space import (  # noqa: F401
    test_member_sees_space_with_team_rooms,
    test_team_commands_explain_themselves,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        redis_server_binary() is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
]


@dataclass
class Topology:
    homeserver: Homeserver
    synapse: WorkerSynapse
    guarded: Guarded
    postgres: str


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Topology:
    folder = tmp_path_factory.mktemp("workers")
    redis = Redis(folder / "redis")
    database = asyncio.run(
        create_postgres_database(
            postgres_server, "synapse_workers", "TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C' ENCODING 'UTF8'"
        )
    )
    port = free_port()  # every bridge of this module listens here: the module's base_url

    def extra(settings) -> dict:
        return {
            **synapse_postgres_config(database),
            "modules": [module_config(f"http://127.0.0.1:{port}", settings.antispam.shared_secret)],
        }

    made: list[WorkerSynapse] = []

    def make(path: Path) -> WorkerSynapse:
        made.append(WorkerSynapse(path, redis.port))
        return made[0]

    try:
        homeserver = start_homeserver(folder, extra, make)
    except BaseException:
        for synapse in made:
            synapse.stop()
        redis.stop()
        asyncio.run(drop_postgres_database(postgres_server, database))
        raise
    yield Topology(homeserver, made[0], Guarded(homeserver, port), postgres_server)
    homeserver.synapse.stop()
    homeserver.front.stop()
    redis.stop()
    asyncio.run(drop_postgres_database(postgres_server, database))


@pytest.fixture(scope="module")
def homeserver(topology: Topology) -> Homeserver:
    return topology.homeserver


@pytest.fixture(scope="module")
def guarded(topology: Topology) -> Guarded:
    return topology.guarded


@pytest.fixture
async def database_url(topology: Topology) -> str:
    """The bridge on PostgreSQL only: workers need it of Synapse, and an installation this large runs both on it."""
    url = await create_postgres_database(topology.postgres, "clutto_workers")
    yield url
    await drop_postgres_database(topology.postgres, url)


@dataclass
class OnModulePort(Bridges):
    """Bridges that listen on the port the enforcement module asks, whichever test starts them."""

    port: int = 0

    def settings(self, **overrides):
        return super().settings(**{"appservice__port": self.port, **overrides})


@pytest.fixture
async def bridges(topology: Topology, database_url: str, tmp_path: Path) -> Bridges:
    manager = OnModulePort(topology.homeserver, tmp_path / "bridge", database_url, port=topology.guarded.port)
    yield manager
    for bridge in list(manager.running):
        await manager.stop(bridge)
    await topology.homeserver.forget_bot_devices()


def test_the_topology_was_in_use(topology: Topology) -> None:
    """Runs last in this file: the tests above went through the processes meant for each part."""
    synapse = topology.synapse
    assert all(p.poll() is None for p in synapse.workers.values()), synapse.tail_log()
    main = synapse.log_path.read_text(errors="replace")
    generic = synapse.worker_log("generic1").read_text(errors="replace")
    persister = synapse.worker_log("persister1").read_text(errors="replace")
    # The generic worker pushed the appservice its transactions, and served the members' sends.
    assert "Starting appservice scheduler" in generic and "Starting appservice scheduler" not in main
    assert "/send/m.room.message/" in generic
    # The persister wrote the events the other processes created.
    assert "/_synapse/replication/send_events" in persister or "/_synapse/replication/send_event/" in persister
    # The retention sweep's purge went to the main process's admin API.
    assert ' 200 "POST /_synapse/admin/v1/purge_history/' in main and "/purge_history/" not in generic
