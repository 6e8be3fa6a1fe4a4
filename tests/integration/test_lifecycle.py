"""The trial lifecycle, driven by the bridge's clock: warnings, export first, irreversible purge."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from mautrix.types import EventType

from clutto_bridge.clock import ManualClock
from clutto_bridge.db.job import JobKind
from tests.integration.conftest import Bridges, unique
from tests.integration.helpers import DAY, Api, openid_api, team_with_member
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until


@pytest.mark.promise("P10", "P14")
async def test_trial_team_is_warned_exported_then_purged(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    clock = ManualClock()
    bridge = await bridges.start(bridges.settings(export__directory=str(tmp_path / "exports")), clock=clock)
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    api = Api(bridge, http)
    username = f"trial-{team.id}"
    status, created = await api.call(
        "POST",
        f"/teams/{team.id}/members",
        json={"username": username, "email": f"{username}@corp.example", "password": "trial-password-1"},
    )
    assert status == 201
    status, _ = await api.call("PUT", f"/teams/{team.id}/export-setting", json={"before_purge": True})
    assert status == 200
    await bridge.profiles.update(created["user_id"], {"first_name": "Trial", "last_name": "User"}, actor=None)
    mxc = await bridge.appservice.intent.upload_media(b"team photo", mime_type="image/png", filename="t.png")
    await bridge.appservice.intent.send_message_event(
        rooms[0], EventType.ROOM_MESSAGE, {"msgtype": "m.image", "body": "t.png", "url": mxc}
    )
    await member.send_text(rooms[0], "a message worth exporting")

    async def media_noted() -> bool:
        return bool(await bridge.db.fetchval("SELECT COUNT(*) FROM room_media WHERE room_id=$1", rooms[0]))

    await wait_until(media_noted, what="the media to be noted")

    # Seven days before the purge the owner is warned in a direct chat, then one day before.
    team = await bridge.teams.get(team.id)
    clock.now = team.purge_after - 7 * DAY
    await bridge.lifecycle.check()
    await bridge.lifecycle.check()  # a second check sends nothing new
    dm = await bridge.management_rooms.room_of(owner.user_id)
    await owner.wait_for_invites({dm})
    await owner.join(dm)
    await owner.wait_for_notice(dm, "(in 7d)", sender=bot)
    clock.now = team.purge_after - DAY
    await bridge.lifecycle.check()
    await owner.wait_for_notice(dm, "(in 1d)", sender=bot)
    warnings = [e.detail["before"] for e in await bridge.audit.for_team(team.id, "trial_warning")]
    assert warnings == ["7d", "1d"]

    # Past the grace period: first the export, verified against its manifest.
    clock.now = team.purge_after + 1
    await bridge.lifecycle.check()
    assert await bridge.runner.store.active(JobKind.PURGE, team.id) is None
    export_job = await bridge.runner.store.active(JobKind.EXPORT, team.id)
    export_job = await bridge.runner.wait(export_job.id, 60)
    assert export_job.state == "done", export_job
    folder = Path(export_job.progress["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} >= {
        "members.json",
        f"media/{mxc.removeprefix('mxc://').replace('/', '_')}",
    }
    for entry in manifest["files"]:
        assert hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    lines = (folder / "rooms" / f"{rooms[0].replace('!', '_').replace(':', '_')}.jsonl").read_text().splitlines()
    assert any(json.loads(line)["content"].get("body") == "a message worth exporting" for line in lines)
    status, served = await api.call("GET", f"/teams/{team.id}/exports/{export_job.id}/manifest.json")
    assert (status, served) == (200, manifest)
    # A path out of the export's folder reaches the handler's guard as it is: sent encoded,
    # the client does not normalise the ``..`` away and the router decodes ``%2F`` into the path.
    outside = tmp_path / "outside.json"
    outside.write_text('{"not": "part of the export"}')
    escape = quote(os.path.relpath(outside.resolve(), folder.resolve()), safe="")
    assert escape.startswith("..%2F")
    status, body = await api.call("GET", f"/teams/{team.id}/exports/{export_job.id}/{escape}", encoded=True)
    assert (status, body) == (404, {"errcode": "M_NOT_FOUND", "error": "No such file in this export."})

    # Then the purge: rooms, media and the account Clutto created are gone.
    await bridge.lifecycle.check()
    purge_job = await bridge.runner.store.active(JobKind.PURGE, team.id)
    purge_job = await bridge.runner.wait(purge_job.id, 120)
    assert purge_job.state == "done", purge_job
    assert await bridge.teams.all() == []
    admin = await bridges.homeserver.synapse.register_user(f"inspector-{team.id}", admin=True)
    for room_id in [team.space_id, *rooms]:
        async with http.get(
            f"{bridges.homeserver.url}/_synapse/admin/v1/rooms/{quote(room_id)}",
            headers={"Authorization": f"Bearer {admin.access_token}"},
        ) as resp:
            assert resp.status == 404
    server, media_id = mxc.removeprefix("mxc://").split("/")
    async with http.get(
        f"{bridges.homeserver.url}/_matrix/client/v1/media/download/{server}/{media_id}",
        headers={"Authorization": f"Bearer {member.token}"},
    ) as resp:
        assert resp.status == 404
    with pytest.raises(MatrixError):
        await MatrixClient.login(bridges.homeserver.url, username, "trial-password-1", http)
    assert (await member.request("GET", "/v3/account/whoami"))["user_id"] == member.user_id
    [entry] = await bridge.audit.for_team(team.id, "team_purged")
    assert entry.detail["accounts_erased"] == [created["user_id"]] and entry.detail["media_deleted"] == 1
    assert await bridge.profiles.get(created["user_id"]) == dict.fromkeys(
        ("first_name", "last_name", "designation", "photo")
    )


@pytest.mark.promise("P10")
async def test_hold_blocks_the_purge_and_paid_teams_stay(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    clock = ManualClock()
    bridge = await bridges.start(clock=clock)
    held_owner = await new_user("held")
    paid_owner = await new_user("paid")
    held = await bridge.teams.create(unique("Held"), owner=held_owner.user_id)
    paid = await bridge.teams.create(unique("Paid"), owner=paid_owner.user_id)
    api = Api(bridge, http)
    status, _ = await api.call("PUT", f"/teams/{held.id}/hold", json={"reason": "audit"})
    assert status == 201
    as_owner = await openid_api(bridge, http, paid_owner)
    status, body = await as_owner.call("PUT", f"/teams/{paid.id}/plan", json={"plan": "paid"})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    status, body = await api.call("PUT", f"/teams/{paid.id}/plan", json={"plan": "gold"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    status, body = await api.call("PUT", f"/teams/{paid.id}/plan", json={"plan": "paid"})
    assert status == 200 and body["plan"] == "paid"

    clock.advance(200 * DAY)
    await bridge.lifecycle.check()
    assert await bridge.runner.store.active(JobKind.PURGE, held.id) is None
    assert await bridge.runner.store.active(JobKind.PURGE, paid.id) is None
    assert {t.id for t in await bridge.teams.all()} == {held.id, paid.id}
    assert await bridge.audit.for_team(held.id, "purge_blocked_by_hold")
