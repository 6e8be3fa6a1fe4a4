"""Analytics as the operator reads them: aggregated and de-identified (promise P15, docs/promises.md)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
from mautrix.types import EventType

from clutto_bridge.app import Bridge
from clutto_bridge.policy.analytics import iso_week
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import DAY, Api, team_with_member, wait_for_job
from tests.integration.matrix_client import wait_until


async def scrape(bridge: Bridge, http: aiohttp.ClientSession, token: str | None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{bridge.settings.appservice.port}/_clutto/metrics"
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


@pytest.mark.promise("P15")
async def test_metrics_after_realistic_use_carry_counts_and_no_identifier(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general, random_room = rooms
    await owner.send_text(general, "!clutto retention show")
    await owner.wait_for_notice(general, "keeps messages", sender=bot)
    await member.send_text(general, "!clutto retention set 1d")
    await member.wait_for_notice(general, "Only the owner", sender=bot)
    await member.send_text(general, "!clutto frobnicate the widgets")
    await member.wait_for_notice(general, "Unknown command", sender=bot)

    api = Api(bridge, http)
    room_name = unique("launch")
    status, room = await api.call("POST", f"/teams/{team.id}/rooms", json={"name": room_name})
    assert status == 201, room
    status, _ = await api.call("GET", f"/teams/{team.id}")
    assert status == 200
    status, _ = await api.call("GET", "/teams/tnosuchteam")
    assert status == 404
    now = bridge.clock.now_ms()
    for i in range(3):
        await bridge.appservice.intent.send_message_event(
            random_room, EventType.ROOM_MESSAGE, {"msgtype": "m.text", "body": f"old {i}"}, timestamp=now - 40 * DAY + i
        )
    await bridge.retention.set_lifetime(team, "30d", actor=owner.user_id)
    status, job = await api.call("POST", f"/teams/{team.id}/retention/sweep")
    assert (await wait_for_job(api, team.id, job["id"]))["state"] == "done"

    # Its own secret: nothing, or the provisioning secret, is refused.
    assert (await scrape(bridge, http, None))[0] == 401
    assert (await scrape(bridge, http, bridge.settings.provisioning.shared_secret))[0] == 401
    secret = bridge.settings.analytics.metrics_secret
    expected = [
        'clutto_teams{plan="trial",state="active"} 1.0',
        'clutto_team_members{membership="joined",role="member"} 1.0',
        'clutto_team_rooms{archived="false",kind="group"} 3.0',
        'clutto_commands_total{command="retention show",outcome="ok"} 1.0',
        'clutto_commands_total{command="retention set",outcome="refused"} 1.0',
        'clutto_commands_total{command="unknown",outcome="unknown"} 1.0',
        'clutto_api_requests_total{method="POST",route="/_clutto/v1/teams/{team_id}/rooms",status="201"} 1.0',
        'clutto_api_requests_total{method="GET",route="/_clutto/v1/teams/{team_id}",status="404"} 1.0',
        'clutto_jobs_finished_total{kind="retention_sweep",state="done"} 1.0',
        "clutto_retention_rooms_purged_total 1.0",  # a room of this homeserver only: purged, not redacted
    ]

    async def scraped() -> str | None:
        status, text = await scrape(bridge, http, secret)
        assert status == 200
        return text if all(line in text for line in expected) else None

    text = await wait_until(scraped, what="the metrics to count what happened")
    identifiers = {
        owner.user_id,
        member.user_id,
        bot,
        team.id,
        team.name,
        team.space_id,
        room["room_id"],
        room_name,
        *rooms,
        *(user.user_id.split(":")[0].lstrip("@") for user in (owner, member)),
    }
    assert [i for i in identifiers if i in text] == []
    assert "tnosuchteam" not in text and "@" not in text and "!" not in text


@pytest.mark.promise("P15")
async def test_usage_report_suppresses_a_cell_of_three_teams_at_k5_and_shows_it_at_k3(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start()
    owners = [await new_user("owner") for _ in range(3)]
    for owner in owners:
        await bridge.teams.create(unique("Small"), owner=owner.user_id)
    config = str(bridges.folder / "config.yaml")

    def cli() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "clutto_bridge", "report", "usage", "-c", config],
            capture_output=True,
            text=True,
            timeout=120,
        )

    status, report = await Api(bridge, http).call("GET", "/reports/usage")
    assert status == 200 and report == {"k": 5, "suppressed_cells": 1, "cells": []}
    shown = await asyncio.to_thread(cli)
    assert shown.returncode == 0, shown.stderr
    assert "1 cell(s) suppressed" in shown.stdout and "trial" not in shown.stdout

    await bridges.stop(bridge)
    bridge = await bridges.start(bridges.settings(analytics__k=3))
    status, report = await Api(bridge, http).call("GET", "/reports/usage")
    week = iso_week(bridge.clock.now_ms())
    assert status == 200
    assert report == {
        "k": 3,
        "suppressed_cells": 0,
        "cells": [{"week": week, "plan": "trial", "size": "1", "teams": 3, "members": 3}],
    }
    shown = await asyncio.to_thread(cli)
    assert shown.returncode == 0, shown.stderr
    assert f"  {week:<10} trial        1      3        3" in shown.stdout and "0 cell(s) suppressed" in shown.stdout
