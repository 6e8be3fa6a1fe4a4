"""Contact import only with permission (P6), and a member's own data, from their client."""

from __future__ import annotations

import json
from urllib.parse import quote

import aiohttp

from clutto_bridge.app import Bridge
from tests.integration.matrix_client import wait_until
from tests.integration.test_consent import bot_chat
from tests.integration.test_member_api import openid_api
from tests.integration.test_members import _team_with_member
from tests.integration.test_provisioning_api import Api


def vcards(*cards: tuple[str, str]) -> bytes:
    return "".join(
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\n{line}\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n" for name, line in cards
    ).encode()


async def post_file(api: Api, path: str, data: bytes, kind: str = "text/vcard") -> tuple[int, dict]:
    return await api.call("POST", path, data=data, headers={**api.auth, "Content-Type": kind})


async def test_contacts_need_permission_and_revocation_deletes_them(
    bridge: Bridge, new_user, http: aiohttp.ClientSession
) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await _team_with_member(bridge, new_user)
    email = f"grace-{team.id}@example.org"
    created = await bridge.members.create_account(team, f"grace-{team.id}", email, "s3cret-pass", actor=owner.user_id)
    file = vcards(("Owner", f"IMPP:matrix:u/{owner.user_id[1:]}"), ("Grace", f"EMAIL:{email.upper()}"),
                  ("Nobody", "EMAIL:nobody@example.net"))
    as_member = await openid_api(bridge, http, member)
    path = f"/users/{quote(member.user_id)}/contacts"

    # Without permission: refused through the API and in the chat, nothing stored.
    status, body = await post_file(as_member, path, file)
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN") and "contacts allow" in body["error"]
    dm = await bot_chat(bridge, member)
    mxc = await member.upload(file, "text/vcard", "contacts.vcf")
    await member.send_file(dm, mxc, "contacts.vcf", "text/vcard")
    await member.wait_for_notice(dm, "I did not import that file", sender=bot)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact") == 0

    await member.send_text(dm, "contacts allow")
    await member.wait_for_notice(dm, "Contact import is allowed", sender=bot)
    status, report = await post_file(as_member, path, file)
    assert status == 201 and report == {"imported": 3, "matched": [owner.user_id, created.user_id]}
    status, listing = await as_member.call("GET", path)
    assert [c["name"] for c in listing["contacts"]] == ["Owner", "Grace", "Nobody"]
    assert all("+1 555" not in json.dumps(c) for c in listing["contacts"])  # phone numbers are not kept

    # Bad files change nothing.
    for data, kind, status_code in ((b"BEGIN:VCARD\nFN:x\n", "text/vcard", 400), (b"{}", "application/json", 415)):
        status, body = await post_file(as_member, path, data, kind)
        assert status == status_code, body
    await member.send_file(dm, await member.upload(b"BEGIN:VCARD\nFN:broken", "text/vcard", "b.vcf"), "b.vcf", "text/vcard")
    await member.wait_for_notice(dm, "The vCard file is malformed", sender=bot)
    # The operator cannot import for a member.
    status, body = await post_file(Api(bridge, http), path, file)
    assert status == 403

    # A file sent in the chat is imported too, with the matches offered as invites.
    await member.send_file(dm, mxc, "contacts.vcf", "text/vcard")
    await member.wait_for_notice(dm, f"Imported 3 contact(s). On this homeserver: {owner.user_id}", sender=bot)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact WHERE owner=$1", member.user_id) == 6

    await member.send_text(dm, "contacts revoke")
    await member.wait_for_notice(dm, "6 imported contact(s) deleted", sender=bot)
    assert await bridge.db.fetchval("SELECT COUNT(*) FROM contact") == 0
    status, body = await post_file(as_member, path, file)
    assert status == 403
    await member.send_text(dm, "contacts revoke")
    await member.wait_for_notice(dm, "nothing to revoke", sender=bot)


async def test_mydata_shows_and_exports_what_is_stored(bridge: Bridge, new_user, http: aiohttp.ClientSession) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await _team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    for command, reply in (("profile set first_name Ada", "Profile updated"), ("accept", "Thank you"),
                           ("contacts allow", "Contact import is allowed"), ("marketing on", "product news")):
        await member.send_text(dm, command)
        await member.wait_for_notice(dm, reply, sender=bot)

    await member.send_text(dm, "mydata")
    summary = await member.wait_for_notice(dm, "What Clutto stores about", sender=bot)
    body = summary["content"]["body"]
    assert "first_name: Ada" in body and f"{team.name} (member, joined)" in body
    assert f"accepted: {bridge.settings.consent.version}" in body and "Product news: yes" in body

    await member.send_text(dm, "mydata export")
    await member.wait_for_notice(dm, "Here is your data", sender=bot)

    async def exported() -> dict | None:
        for event in await member.messages(dm):
            if event["content"].get("msgtype") == "m.file" and event["sender"] == bot:
                return event
        return None

    event = await wait_until(exported, what="the export file")
    data = json.loads(await member.download(event["content"]["url"]))
    assert data["profile"]["first_name"] == "Ada" and data["marketing_opted_in"] is True
    assert [c["version"] for c in data["policy_consent"]] == [bridge.settings.consent.version]
    assert [t["team_id"] for t in data["teams"]] == [team.id] and data["contact_import_allowed"]
    assert [c["choice"] for c in data["choices"]] == ["policy_consent", "contact_import"]

    as_member = await openid_api(bridge, http, member)
    status, api_data = await as_member.call("GET", f"/users/{quote(member.user_id)}/data")
    assert status == 200 and api_data["profile"] == data["profile"] and api_data["teams"] == data["teams"]
    status, body = await as_member.call("GET", f"/users/{quote(owner.user_id)}/data")
    assert status == 403
    # Personal data stays out of team rooms.
    await member.send_text(rooms[0], "!clutto mydata")
    await member.wait_for_notice(rooms[0], "That is personal", sender=bot)
