"""The appservice contract with the homeserver: tokens, transactions, restarts, signals."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from clutto_bridge.matrix import spaces
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import wait_until_serving
from tests.integration.matrix_client import wait_until


def _txn_url(bridge: Bridge, txn_id: str) -> str:
    return f"http://127.0.0.1:{bridge.settings.appservice.port}/_matrix/app/v1/transactions/{txn_id}"


# One database: the token is checked before anything is read or stored.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_wrong_hs_token_is_rejected(bridge: Bridge, http: aiohttp.ClientSession) -> None:
    url = _txn_url(bridge, "bad-token-" + secrets.token_hex(4))
    async with http.put(url, json={"events": []}, headers={"Authorization": "Bearer wrong-token"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["errcode"] == "M_UNKNOWN_TOKEN"
    async with http.put(url, json={"events": []}) as resp:
        assert resp.status == 401
    port = bridge.settings.appservice.port
    async with http.get(f"http://127.0.0.1:{port}/_matrix/app/v1/users/@x:localhost?access_token=nope") as resp:
        assert resp.status == 401


async def test_what_the_homeserver_held_back_arrives_once_the_restarted_bridge_asks_for_a_ping(
    bridges: Bridges, new_user
) -> None:
    """Synapse keeps the transactions a stopped bridge refused and retries them on a back-off that
    doubles up to 8.5 minutes. The restarted bridge asks the homeserver to ping it, and Synapse
    then sends what it held back at once. Here the front refuses every transaction until that ping
    has gone through, so the retry schedule alone would never deliver the command."""
    bridge = await bridges.start()
    settings = bridge.settings
    bot = settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    front = bridges.homeserver.front
    front.down = True
    try:
        await bridges.stop(bridge)
        refused = front.refused
        name = unique("Held")
        await alice.send_text(dm, f"team create {name}")

        async def tried() -> bool:
            return front.refused > refused

        await wait_until(tried, what="the homeserver to try to deliver the command to the stopped bridge")
        front.hold_until_pinged()
        pings = front.pings
        bridge = await bridges.start(settings)
        front.down = False
        await alice.wait_for_notice(dm, "Team created", sender=bot, timeout=60)
    finally:
        front.down = front.refuse_until_pinged = False
    assert front.pings > pings
    assert [t.name for t in await bridge.teams.all()] == [name]


async def test_a_delivery_the_homeserver_backs_off_from_comes_with_the_next_periodic_ping(
    bridges: Bridges, new_user
) -> None:
    """One refused delivery (the bridge briefly unreachable) puts Synapse's retries of it on a
    back-off that doubles up to 8.5 minutes, and nothing tells the running bridge. Its periodic
    ping (``appservice.ping_interval``) brings the delivery. The front refuses transactions until
    a ping after the first refusal, so Synapse's own retries never deliver."""
    bridge = await bridges.start(bridges.settings(appservice__ping_interval="1s"))
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)
    front = bridges.homeserver.front
    refused = front.refused
    front.hold_until_pinged(refusals=1)
    try:
        name = unique("Backed off")
        await alice.send_text(dm, f"team create {name}")
        await alice.wait_for_notice(dm, "Team created", sender=bot, timeout=60)
    finally:
        front.refuse_until_pinged = False
    assert front.refused > refused
    assert [t.name for t in await bridge.teams.all()] == [name]


# One database: only the homeserver's answer is read.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_homeserver_that_cannot_reach_the_bridge_is_reported_with_its_reason_and_in_the_metrics(
    bridges: Bridges, caplog: pytest.LogCaptureFixture
) -> None:
    """The ping is also the check that events can arrive: when the homeserver's ping fails, the
    operator's log says so in capitals and why (never a traceback), and the gauge says 0."""
    bridge = await bridges.start()

    def gauge() -> float | None:
        return bridge.metrics.registry.get_sample_value("clutto_homeserver_reaches_bridge")

    reached = await bridge.reach.check()
    assert reached.reached is True and gauge() == 1, reached
    front = bridges.homeserver.front
    target, front.target, front.down = front.target, None, True
    try:
        caplog.clear()
        await bridge.reach.check()
    finally:
        front.target, front.down = target, False
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(
        "THE HOMESERVER CANNOT REACH THE BRIDGE: the registration's url answered with an error (M_BAD_STATUS 502)" in w
        for w in warnings
    ), warnings
    assert not any(r.exc_info for r in caplog.records)
    assert gauge() == 0
    await bridge.reach.check()
    assert gauge() == 1


async def test_replayed_transaction_is_applied_once(bridges: Bridges, new_user, http: aiohttp.ClientSession) -> None:
    bridge = await bridges.start()
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)

    name = unique("Replay")
    txn_id = "replay-" + secrets.token_hex(4)
    event = {
        "type": "m.room.message",
        "room_id": dm,
        "sender": alice.user_id,
        "event_id": f"$replay{secrets.token_hex(8)}",
        "origin_server_ts": int(time.time() * 1000),
        "content": {"msgtype": "m.text", "body": f"team create {name}"},
        "unsigned": {},
    }
    headers = {"Authorization": f"Bearer {bridge.settings.appservice.hs_token}"}

    async def deliver(target: Bridge) -> None:
        async with http.put(_txn_url(target, txn_id), json={"events": [event]}, headers=headers) as resp:
            assert resp.status == 200

    await deliver(bridge)
    await deliver(bridge)
    await alice.wait_for_notice(dm, "Team created", sender=bot)

    # After a restart the transaction id is still known.
    await bridges.stop(bridge)
    bridge = await bridges.start()
    await deliver(bridge)
    await alice.send_text(dm, "team info")
    await alice.wait_for_notice(dm, "Space: ", sender=bot)

    bodies = [e["content"].get("body", "") for e in await alice.messages(dm) if e["sender"] == bot]
    assert sum("Creating team" in b for b in bodies) == 1
    assert not any("already exists" in b for b in bodies)
    assert [t.name for t in await bridge.teams.all()] == [name]


async def test_restart_keeps_teams_and_creates_nothing_twice(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    owner = await new_user("owner")
    first = await bridges.start()
    api = f"http://127.0.0.1:{first.settings.appservice.port}/_clutto/v1"
    auth = {"Authorization": f"Bearer {first.settings.provisioning.shared_secret}"}
    name = unique("Persistent")
    async with http.post(f"{api}/teams", json={"name": name, "owner": owner.user_id}, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    await bridges.stop(first)

    second = await bridges.start()
    api = f"http://127.0.0.1:{second.settings.appservice.port}/_clutto/v1"
    async with http.get(f"{api}/teams/{created['id']}", headers=auth) as resp:
        assert resp.status == 200
        again = await resp.json()
    assert again["space_id"] == created["space_id"]
    assert again["rooms"] == created["rooms"]
    async with http.post(f"{api}/teams", json={"name": name, "owner": owner.user_id}, headers=auth) as resp:
        assert resp.status == 409
    await owner.wait_for_invites({created["space_id"]})
    await owner.join(created["space_id"])
    children = {room["room_id"] for room in await owner.hierarchy(created["space_id"])} - {created["space_id"]}
    assert children == {r["room_id"] for r in created["rooms"]}


async def test_interrupted_team_creation_is_finished_after_restart(
    bridges: Bridges, new_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await new_user("owner")
    bridge = await bridges.start()
    real = spaces.create_group_room
    calls = 0

    async def crash_on_second_room(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("simulated crash while creating rooms")
        return await real(*args, **kwargs)

    monkeypatch.setattr(spaces, "create_group_room", crash_on_second_room)
    name = unique("Halfway")
    with pytest.raises(ConnectionError):
        await bridge.teams.create(name, owner=owner.user_id)
    await bridges.stop(bridge)
    monkeypatch.setattr(spaces, "create_group_room", real)

    bridge = await bridges.start()
    [team] = await bridge.teams.all()
    assert team.state == "active"
    view = await bridge.teams.view(team)
    assert [r.name for r in view.rooms] == ["general", "random"]
    await owner.wait_for_invites({team.space_id})
    await owner.join(team.space_id)
    names = sorted(
        room.get("name") for room in await owner.hierarchy(team.space_id) if room["room_id"] != team.space_id
    )
    assert names == ["general", "random"]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_cli_runs_until_signal_and_stops_cleanly(
    bridges: Bridges, http: aiohttp.ClientSession, stop_signal: signal.Signals
) -> None:
    settings = bridges.settings()
    config = bridges.folder / "config.yaml"
    port = settings.appservice.port
    bridges.homeserver.front.target = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "clutto_bridge", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await wait_until_serving(
            process,
            http,
            f"http://127.0.0.1:{port}/_matrix/mau/ready",
            "the bridge to be ready",
            lambda: process.stdout.read().decode(),
        )
        process.send_signal(stop_signal)
        code = await asyncio.to_thread(process.wait, 30)
        output = process.stdout.read().decode()
    finally:
        bridges.homeserver.front.target = None
        if process.poll() is None:
            process.kill()
    assert code == 0, output
    assert "Bridge stopped" in output
    assert "Traceback" not in output


async def test_stop_cancels_a_command_still_running_after_the_grace_period(bridges: Bridges) -> None:
    """A command that outlives the grace period is cancelled, and its clean-up still finds the
    database open: nothing runs after the database is closed."""
    bridge = await bridges.start()
    started, cleaned_up = asyncio.Event(), []

    async def stuck_command() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cleaned_up.append(len(await bridge.teams.all()))  # a database read during clean-up
            raise

    bridge.inbox_work.start(stuck_command())
    await asyncio.wait_for(started.wait(), 5)
    bridges.homeserver.front.target = None
    bridges.running.remove(bridge)
    began = time.monotonic()
    await asyncio.wait_for(bridge.stop(grace=0.5), 30)
    assert time.monotonic() - began < 20  # it did not wait for the command to end by itself
    assert len(cleaned_up) == 1 and not bridge.inbox_work.tasks
    assert not bridge.schedule.running  # the periodic tasks were awaited, not left running


# One database: refused while parsing (stored transactions run on both in the fuzz test below).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_malformed_transactions_and_pings_get_400_not_500(bridge: Bridge, http: aiohttp.ClientSession) -> None:
    token = {"Authorization": f"Bearer {bridge.settings.appservice.hs_token}", "Content-Type": "application/json"}
    port = bridge.settings.appservice.port
    ping = f"http://127.0.0.1:{port}/_matrix/app/v1/ping"
    cases = [
        (b"[]", "M_BAD_JSON"),
        (b"null", "M_BAD_JSON"),
        (b'{"events": 5}', "M_BAD_JSON"),
        (b'{"events": [1, 2]}', "M_BAD_JSON"),
        (b'{"events": [], "ephemeral": {"a": 1}}', "M_BAD_JSON"),
        (b'{"events": [{"body": "\xff\xfe"}]}', "M_NOT_JSON"),
        (b"[" * 5000 + b"]" * 5000, "M_BAD_JSON"),
        (b"{not json", "M_NOT_JSON"),
    ]
    for body, errcode in cases:
        url = _txn_url(bridge, "bad-body-" + secrets.token_hex(4))
        async with http.put(url, data=body, headers=token) as resp:
            assert resp.status == 400, (body[:40], resp.status, await resp.text())
            assert (await resp.json())["errcode"] == errcode, body[:40]
    for body in (b"[1]", b"null"):
        async with http.post(ping, data=body, headers=token) as resp:
            assert (resp.status, (await resp.json())["errcode"]) == (400, "M_BAD_JSON"), body
    async with http.post(ping, data=b'{"transaction_id": "t"}', headers=token) as resp:
        assert resp.status == 200
    # A well-formed transaction is still applied.
    url = _txn_url(bridge, "good-" + secrets.token_hex(4))
    async with http.put(url, json={"events": []}, headers=token) as resp:
        assert resp.status == 200


# One database: the file is SQLite's (the PostgreSQL run only skipped).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_embedded_database_is_readable_by_its_owner_only(bridges: Bridges, database_url: str) -> None:
    if not database_url.startswith("sqlite:"):
        pytest.skip("PostgreSQL keeps its files in its own data folder")
    path = Path(database_url.removeprefix("sqlite:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o644)
    os.chmod(path, 0o644)  # as a careless copy would leave it
    bridge = await bridges.start(bridges.settings())
    assert bridge.settings.appservice.database == database_url
    assert path.stat().st_mode & 0o777 == 0o600


def _transaction_bodies(count: int) -> list[bytes]:
    """Random JSON of every shape, some of it shaped like a transaction (hypothesis strategies)."""
    import json
    import warnings

    from hypothesis import strategies as st
    from hypothesis.errors import NonInteractiveExampleWarning

    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=20,
    )
    keys = st.sampled_from(
        ["type", "content", "room_id", "sender", "event_id", "state_key", "origin_server_ts", "unsigned"]
    )
    events = st.lists(st.dictionaries(keys, values, max_size=6), max_size=3)
    bodies = st.one_of(values, st.fixed_dictionaries({"events": values}), st.fixed_dictionaries({"events": events}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        return [json.dumps(bodies.example()).encode() for _ in range(count)]


async def test_fuzzed_transaction_bodies_never_get_a_server_error(bridge: Bridge, http: aiohttp.ClientSession) -> None:
    token = {"Authorization": f"Bearer {bridge.settings.appservice.hs_token}", "Content-Type": "application/json"}
    for body in await asyncio.to_thread(_transaction_bodies, 60):
        url = _txn_url(bridge, "fuzz-" + secrets.token_hex(6))
        async with http.put(url, data=body, headers=token) as resp:
            assert resp.status in (200, 400), (resp.status, body[:200], await resp.text())
    async with http.put(_txn_url(bridge, "after-fuzz"), json={"events": []}, headers=token) as resp:
        assert resp.status == 200  # still serving
