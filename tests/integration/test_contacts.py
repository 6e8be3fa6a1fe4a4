"""Contact import only with permission (P6), and a member's own data, from their client."""

from __future__ import annotations

import json
from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.app import Bridge
from tests.integration.helpers import (
    Api,
    bot_chat,
    file_is_gone,
    openid_api,
    post_file,
    send_vcard,
    team_with_member,
    vcards,
)
from tests.integration.matrix_client import wait_until


@pytest.mark.promise("P6")
async def test_contacts_need_permission_and_revocation_deletes_them(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    email = f"grace-{team.id}@example.org"
    created = await bridge.members.create_account(team, f"grace-{team.id}", email, "s3cret-pass", actor=owner.user_id)
    file = vcards(
        ("Owner", f"IMPP:matrix:u/{owner.user_id[1:]}"),
        ("Grace", f"EMAIL:{email.upper()}"),
        ("Nobody", "EMAIL:nobody@example.net"),
    )
    as_member = await openid_api(bridge, http, member)
    path = f"/users/{quote(member.user_id)}/contacts"
    permission = f"/_clutto/v1/users/{member.user_id}/contacts/permission"

    # Without permission: refused through the API (naming the endpoint that grants it) and in
    # the chat, nothing stored, and the file is gone from the chat and the homeserver.
    status, body = await post_file(as_member, path, file)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert f"PUT {permission}" in body["error"] and "contacts allow" not in body["error"]
    dm = await bot_chat(bridge, member)
    event_id, mxc = await send_vcard(member, dm, file)
    reply = await member.wait_for_notice(dm, "I did not import that file", sender=bot)
    assert "I removed the file from this chat and deleted it from the homeserver" in reply["content"]["body"]
    await file_is_gone(member, dm, event_id, mxc)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact") == 0

    await member.send_text(dm, "contacts allow")
    await member.wait_for_notice(dm, "Contact import is allowed", sender=bot)
    status, body = await as_member.call("PUT", f"{path}/permission")
    assert status == 409 and f"DELETE {permission} withdraws it" in body["error"] and "`" not in body["error"]
    status, report = await post_file(as_member, path, file)
    assert status == 201 and report == {"imported": 3, "matched": [owner.user_id, created.user_id], "already_known": 0}
    status, listing = await as_member.call("GET", path)
    assert [c["name"] for c in listing["contacts"]] == ["Owner", "Grace", "Nobody"]
    assert all("+1 555" not in json.dumps(c) for c in listing["contacts"])  # phone numbers are not kept

    # Bad files change nothing, and a refused file in the chat is removed too.
    for data, kind, status_code in ((b"BEGIN:VCARD\nFN:x\n", "text/vcard", 400), (b"{}", "application/json", 415)):
        status, body = await post_file(as_member, path, data, kind)
        assert status == status_code, body
    event_id, mxc = await send_vcard(member, dm, b"BEGIN:VCARD\nFN:broken", "b.vcf")
    await member.wait_for_notice(dm, "The vCard file is malformed", sender=bot)
    await file_is_gone(member, dm, event_id, mxc)
    # The operator cannot import for a member.
    status, body = await post_file(Api(bridge, http), path, file)
    assert status == 403

    # The same file again, in the chat: nobody is kept twice; the matches are offered as invites.
    event_id, mxc = await send_vcard(member, dm, file)
    reply = await member.wait_for_notice(
        dm, "Imported 0 contact(s) (3 card(s) of the file were already there", sender=bot
    )
    assert f"On this homeserver: {owner.user_id}, {created.user_id}" in reply["content"]["body"]
    assert "only names, email addresses and Matrix IDs are kept" in reply["content"]["body"]
    await file_is_gone(member, dm, event_id, mxc)
    # A card with a new address for a known email is the same contact, with the address added.
    status, report = await post_file(
        as_member, path, vcards(("Grace H.", f"EMAIL:{email}\r\nEMAIL:grace@work.example"))
    )
    assert status == 201 and (report["imported"], report["already_known"]) == (0, 1)
    status, listing = await as_member.call("GET", path)
    assert [(c["name"], c["emails"]) for c in listing["contacts"]][1] == ("Grace", [email, "grace@work.example"])
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", member.user_id) == 3

    await member.send_text(dm, "contacts revoke")
    await member.wait_for_notice(dm, "3 imported contact(s) deleted", sender=bot)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact") == 0
    status, body = await post_file(as_member, path, file)
    assert status == 403
    await member.send_text(dm, "contacts revoke")
    await member.wait_for_notice(dm, "nothing to revoke", sender=bot)


async def _at_least(replies, count: int) -> list[str] | None:
    found = await replies()
    return found if len(found) >= count else None


@pytest.mark.promise("P6")
async def test_contacts_stay_out_of_team_rooms(bridge: Bridge, new_user) -> None:
    """Contact commands are refused in a team room, and a vCard posted there is not imported:
    its sender hears so in the chat with the bot."""
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)

    async def bot_replies() -> list[str]:
        return [
            e["content"]["body"]
            for e in await member.messages(rooms[0])
            if e["type"] == "m.room.message" and e["sender"] == bot
        ]

    for count, command in enumerate(("allow", "revoke", "list"), start=1):
        await member.send_text(rooms[0], f"!clutto contacts {command}")
        replies = await wait_until(lambda: _at_least(bot_replies, count), what=f"the reply to contacts {command}")
        assert "direct chat with me" in replies[0] and "Contact import" not in replies[0]
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact_permission WHERE user_id=$1", member.user_id) == 0

    await member.send_text(dm, "contacts allow")
    await member.wait_for_notice(dm, "Contact import is allowed", sender=bot)
    event_id, mxc = await send_vcard(member, rooms[0], vcards(("Ada", "EMAIL:ada@example.org")), "team.vcf")
    told = await member.wait_for_notice(dm, 'You posted the contact file "team.vcf" in a room of', sender=bot)
    assert team.name in told["content"]["body"] and "I did not import it" in told["content"]["body"]
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", member.user_id) == 0
    # The team's room is the team's: the bot leaves the message there for the sender to delete.
    assert await owner.download(mxc)


async def test_mydata_shows_and_exports_what_is_stored(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    for command, reply in (
        ("profile set first_name Ada", "Profile updated"),
        ("accept", "Thank you"),
        ("contacts allow", "Contact import is allowed"),
        ("marketing off", "no longer receive product news"),
        ("marketing on", "You will receive product news"),
    ):
        await member.send_text(dm, command)
        await member.wait_for_notice(dm, reply, sender=bot)

    await member.send_text(dm, "mydata")
    summary = await member.wait_for_notice(dm, "What Clutto stores about", sender=bot)
    body = summary["content"]["body"]
    assert "first_name: Ada" in body and f"{team.name} (member, joined)" in body
    assert f"accepted: {bridge.settings.consent.version}" in body and "Product news: yes" in body
    assert "product news opted out on" in body and "product news opted in on" in body

    # The chat is not encrypted: no file, which would lie readable in the media store; the
    # answer says where the data is (test_encrypted_files.py has the encrypted chat's file).
    await member.send_text(dm, "mydata export")
    said = (await member.wait_for_notice(dm, "This chat is not encrypted", sender=bot))["content"]["body"]
    assert "so I do not send it here as a file" in said and "/_clutto/v1/users/" in said
    assert not [e for e in await member.messages(dm) if e["content"].get("msgtype") == "m.file"]

    as_member = await openid_api(bridge, http, member)
    status, data = await as_member.call("GET", f"/users/{quote(member.user_id)}/data")
    assert status == 200
    assert data["profile"]["first_name"] == "Ada" and data["marketing_opted_in"] is True
    assert [c["version"] for c in data["policy_consent"]] == [bridge.settings.consent.version]
    assert [t["team_id"] for t in data["teams"]] == [team.id] and data["contact_import_allowed"]
    # Every choice the member made, with its time: consent, contact permission, marketing off and on.
    assert [(c["choice"], c["value"]) for c in data["choices"]] == [
        ("policy_consent", bridge.settings.consent.version),
        ("contact_import", "allowed"),
        ("marketing", "opted_out"),
        ("marketing", "opted_in"),
    ]
    times = [c["ts"] for c in data["choices"]]
    assert times == sorted(times) and times[0] > 0
    status, body = await as_member.call("GET", f"/users/{quote(owner.user_id)}/data")
    assert status == 403
    # Personal data stays out of team rooms.
    await member.send_text(rooms[0], "!clutto mydata")
    await member.wait_for_notice(rooms[0], "That is personal", sender=bot)
