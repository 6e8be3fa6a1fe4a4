"""A team's export holds its messages, files and members: on the bridge's host it is readable
by the bridge's user only (folders 0700, files 0600), like the database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mautrix.types import EventType

from tests.integration.conftest import Bridges
from tests.integration.helpers import team_with_member
from tests.integration.matrix_client import wait_until


@pytest.mark.promise("P9")
async def test_an_export_is_readable_by_the_bridge_user_only(bridges: Bridges, new_user, tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which plain writes are 0755 / 0644
    try:
        bridge = await bridges.start(bridges.settings(export__directory=str(tmp_path / "exports")))
        owner, member, team, rooms = await team_with_member(bridge, new_user)
        mxc = await bridge.appservice.intent.upload_media(b"team photo", mime_type="image/png", filename="t.png")
        await bridge.appservice.intent.send_message_event(
            rooms[0], EventType.ROOM_MESSAGE, {"msgtype": "m.image", "body": "t.png", "url": mxc}
        )
        await member.send_text(rooms[0], "a message of the team")

        async def media_noted() -> bool:
            return bool(await bridge.db.fetchval("SELECT COUNT(*) FROM room_media WHERE room_id=$1", rooms[0]))

        await wait_until(media_noted, what="the media to be noted")
        job = await bridge.lifecycle.request_export(team, actor=owner.user_id)
        job = await bridge.runner.wait(job.id, 60)
        assert job.state == "done", job
    finally:
        os.umask(previous)

    folder = Path(job.progress["path"])
    written = [folder.parent, folder, *folder.rglob("*")]
    files = {str(p.relative_to(folder)) for p in written if p.is_file()}
    assert {"manifest.json", "members.json", f"media/{mxc.removeprefix('mxc://').replace('/', '_')}"} <= files
    assert any(name.startswith("rooms/") and name.endswith(".jsonl") for name in files), files
    modes = {str(p): p.stat().st_mode & 0o777 for p in written}
    assert modes == {str(p): 0o700 if p.is_dir() else 0o600 for p in written}
