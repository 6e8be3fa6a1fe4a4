"""What a member sees of the bot's answers in their timeline (issue 25): every answer a reply in
the command's thread, files included; listings notify nobody; a refused vCard says only what
happened; the greeting by the person's teams; an export named by its team's number, fetched from
the portal or the chat, never by a path on the bridge's host."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import aiohttp

from clutto_bridge.app import Bridge
from clutto_bridge.demo.synapse import free_port
from tests.integration.conftest import Bridges
from tests.integration.helpers import reply_to, send, send_vcard, sign_in_link, team_with_member, vcards
from tests.integration.matrix_client import MatrixClient


def in_thread(root: str) -> dict:
    return {"rel_type": "m.thread", "event_id": root, "is_falling_back": True, "m.in_reply_to": {"event_id": root}}


async def greeting(bridge: Bridge, user: MatrixClient) -> str:
    """The greeting in a chat the user opens with the bot."""
    dm = await user.create_dm(bridge.settings.bot_mxid)
    return (await user.wait_for_notice(dm, "Send help", sender=bridge.settings.bot_mxid))["content"]["body"]


async def test_answers_are_replies_in_the_thread_listings_notify_nobody_and_the_greeting_knows_the_team(
    bridge: Bridge, new_user
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)

    # team info names both members (two, under the old limit of three), but notifies only the
    # member who asked: the reply is theirs, the listing is not a call to anyone.
    command = await send(member, rooms[0], "!clutto team info")
    info = await reply_to(member, rooms[0], command, bot)
    assert owner.user_id in info["content"]["formatted_body"]
    assert info["content"]["m.mentions"] == {"user_ids": [member.user_id]}

    # The greeting says what each can do now.
    said = await greeting(bridge, owner)
    assert f"You own {team.name}." in said and "manage it" in said and "Here you can create a team" not in said
    said = await greeting(bridge, member)
    assert f"You are a member of {team.name}." in said and "team info" in said and "manage" not in said
    loner = await new_user("loner")
    said = await greeting(bridge, loner)
    assert "You are in no team yet" in said and "team create NAME" in said
    dm = await bridge.management_rooms.room_of(member.user_id)

    # mydata export in a thread: the answer replies to the command, in the thread (in this
    # plaintext chat it says where the data is instead of attaching it).
    root = await send(member, dm, "About my data")
    command = await send(member, dm, "mydata export", in_thread(root))
    note = await reply_to(member, dm, command, bot)
    relation = note["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == root, relation
    assert "This chat is not encrypted" in note["content"]["body"]

    # A vCard before `contacts allow`: refused, removed, and nothing said about what is kept.
    event_id, _ = await send_vcard(member, dm, vcards(("Ada", "EMAIL:ada@example.org")))
    refused = (await reply_to(member, dm, event_id, bot))["content"]["body"]
    assert "I did not import that file" in refused and "Send contacts allow" in refused.replace("`", "")
    assert "kept" not in refused and "I removed the file from this chat" in refused


async def test_an_export_is_numbered_per_team_and_fetched_from_the_portal_or_the_chat(
    bridges: Bridges, new_user, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    bridge = await portal_bridge_with_exports(bridges, folder)
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    await member.send_text(rooms[0], "our first message")
    link, dm = await sign_in_link(bridge, owner)

    # Asked in the chat with the bot: the team's first export is #1, and when it is ready the
    # owner gets the portal link as a reply to the command. The chat is not encrypted, so the
    # zip (small enough) is not attached: it would lie readable in the media store.
    command = await send(owner, dm, "export")
    queued = await owner.wait_for_notice(dm, f"Export #1 of {team.name} queued", sender=bot)
    assert queued["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": command}}
    ready = await owner.wait_for_notice(dm, f"Export #1 of {team.name} is ready", sender=bot, timeout=60)
    assert ready["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": command}}
    assert "This chat is not encrypted, so I do not send the file here" in ready["content"]["body"]
    download = re.search(r"http://\S+\.zip", ready["content"]["body"]).group(0)

    # The zip from the portal, for the signed-in owner only.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(download) as resp:
            assert resp.status == 401
        async with http.get(link) as resp:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
        async with http.post(link.split("?")[0], data={"csrf": csrf, "token": link.split("token=")[1]}) as resp:
            assert resp.status == 200
        async with http.get(download) as resp:
            assert resp.status == 200
            archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    manifest = json.loads(archive.read("manifest.json"))
    assert {f["path"] for f in manifest["files"]} | {"manifest.json"} == set(archive.namelist())
    assert any(b"our first message" in archive.read(n) for n in archive.namelist() if n.startswith("rooms/"))

    # Asked in a team room: #2, and the news goes to the owner's chat with the bot, not the room.
    await owner.send_text(rooms[0], "!clutto export")
    await owner.wait_for_notice(rooms[0], f"Export #2 of {team.name} queued", sender=bot)
    await owner.wait_for_notice(dm, f"Export #2 of {team.name} is ready", sender=bot, timeout=60)
    said = [e["content"] for e in await member.messages(rooms[0]) if e["sender"] == bot]
    assert not any(c.get("msgtype") == "m.file" or "Download it" in c.get("body", "") for c in said), said
    # No zip in the plaintext chat, either time.
    assert not [e for e in await owner.messages(dm) if e["content"].get("msgtype") == "m.file"]

    # No path on the bridge's host in the chat or in the audit log's targets.
    everything = json.dumps([await owner.messages(dm), await member.messages(rooms[0])])
    assert str(folder) not in everything and str(folder.resolve()) not in everything
    created = await bridge.audit.for_team(team.id, "export_created")
    assert [e.target for e in created] == ["export #1", "export #2"]


async def portal_bridge_with_exports(bridges: Bridges, folder: Path) -> Bridge:
    """As ``portal_bridge`` (links to its own port), writing exports into ``folder``."""
    port = free_port()
    return await bridges.start(
        bridges.settings(
            appservice__port=port,
            portal__public_url=f"http://127.0.0.1:{port}/portal",
            export__directory=str(folder),
        )
    )
