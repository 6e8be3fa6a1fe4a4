"""What a member types and what the bot answers: names, roles, people on other
homeservers and profile photos, checked in the member's own client."""

from __future__ import annotations

from io import BytesIO

import pytest
from PIL import Image

from clutto_bridge.app import Bridge
from tests.integration.conftest import unique
from tests.integration.helpers import bot_chat, png, team_with_member
from tests.integration.matrix_client import MatrixClient, wait_until


async def bot_notices(client: MatrixClient, room_id: str, bot: str) -> list[str]:
    return [
        e["content"].get("body", "")
        for e in await client.messages(room_id, limit=100)
        if e["type"] == "m.room.message" and e["sender"] == bot
    ]


async def test_team_create_refuses_before_it_says_creating_and_takes_emoji_and_joiners(
    bridge: Bridge, new_user
) -> None:
    bot = bridge.settings.bot_mxid
    alice = await new_user("alice")
    dm = await alice.create_dm(bot)
    await alice.wait_for_notice(dm, "Send help", sender=bot)

    # A duplicate is refused at once, naming the existing team as it is spelled.
    existing = unique("Globex")
    await bridge.teams.create(existing, owner=alice.user_id)
    await alice.send_text(dm, f"team create {existing.upper()}")
    await alice.wait_for_notice(dm, f"A team named {existing!r} already exists", sender=bot)
    # A bidi override: the refusal names the character and where it is.
    prefix = unique("Acme")
    await alice.send_text(dm, f"team create {prefix}\u202eevil")
    await alice.wait_for_notice(dm, f"U+202E RIGHT-TO-LEFT OVERRIDE at position {len(prefix) + 1}", sender=bot)
    # A joiner outside an emoji sequence or a joining script.
    await alice.send_text(dm, f"team create {prefix}\u200dx")
    await alice.wait_for_notice(dm, f"U+200D ZERO WIDTH JOINER at position {len(prefix) + 1}", sender=bot)
    # 10,000 characters are not echoed back.
    await alice.send_text(dm, "team create " + "y" * 10_000)
    await alice.wait_for_notice(dm, "The team name is 10000 characters long", sender=bot)
    answers = await bot_notices(alice, dm, bot)
    assert not any("Creating team" in body for body in answers), answers
    assert all("y" * 50 not in body for body in answers)

    # Standard emoji ZWJ sequences and Persian/Indic joiners are names like any other.
    for name in (unique("Developer") + " 👩\u200d💻", unique("تیم") + " می\u200cخواهم", unique("टीम") + " क्\u200dष"):
        await alice.send_text(dm, f"team create {name}")
        await alice.wait_for_notice(dm, f"Creating team {name}", sender=bot)

        async def created(name: str = name) -> bool:
            return any(t.name == name and t.space_id for t in await bridge.teams.of_user(alice.user_id))

        await wait_until(created, what=f"the team {name!r}")
    assert len(await bridge.teams.of_user(alice.user_id)) == 4


async def test_role_owner_points_to_transfer_and_a_remote_invite_is_explained(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    await owner.send_text(general, f"!clutto role {member.user_id} owner")
    reply = await owner.wait_for_notice(general, "owner is not a role to give", sender=bot)
    body = reply["content"]["body"]
    assert f"!clutto transfer {member.user_id}" in body and "invite" not in body
    await owner.send_text(general, f"!clutto role {member.user_id} wizard")
    await owner.wait_for_notice(general, "Unknown role 'wizard'; the roles are admin, member, guest.", sender=bot)
    assert await bridge.teams.role_of(team, member.user_id) == "member"

    # The test homeserver federates with nobody: the lookup of a remote user is refused.
    await owner.send_text(general, "!clutto invite @evil:example.org")
    reply = await owner.wait_for_notice(general, "@evil:example.org cannot be invited", sender=bot)
    body = reply["content"]["body"]
    assert "another homeserver (example.org)" in body and "was refused" in body and "(403)" not in body


def image(kind: str) -> bytes:
    out = BytesIO()
    Image.new("RGB", (4, 4), (10, 120, 200)).save(out, format=kind)
    return out.getvalue()


@pytest.mark.promise("P2")
async def test_profile_photo_is_checked_by_its_content(bridge: Bridge, new_user) -> None:
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]
    dm = await bot_chat(bridge, member)

    async def avatar() -> str | None:
        return (await owner.state(general, "m.room.member", member.user_id)).get("avatar_url")

    # A text file uploaded as image/png does not become the photo, by command or as an image.
    fake = await member.upload(b"This is not a picture at all.\n", "image/png", "me.png")
    await member.send_text(dm, f"profile set photo {fake}")
    await member.wait_for_notice(dm, "The photo is not an image", sender=bot)
    await member.send_file(dm, fake, "me.png", "image/png", msgtype="m.image")
    await wait_until(lambda: _count(member, dm, bot, "The photo is not an image", 2), what="the second refusal")
    # A PNG signature followed by text: the image library cannot read it.
    broken = await member.upload(b"\x89PNG\r\n\x1a\n" + b"but then text" * 10, "image/png", "broken.png")
    await member.send_text(dm, f"profile set photo {broken}")
    await member.wait_for_notice(dm, "starts like image/png but cannot be read", sender=bot)
    # A JPEG uploaded as PNG.
    jpeg = await member.upload(image("JPEG"), "image/png", "photo.png")
    await member.send_text(dm, f"profile set photo {jpeg}")
    await member.wait_for_notice(dm, "uploaded as image/png but its content is image/jpeg", sender=bot)
    assert (await bridge.profiles.get(member.user_id))["photo"] is None
    assert await avatar() is None

    # Real images are taken and become the avatar teammates see.
    ok = await member.upload(png(), "image/png", "me.png")
    await member.send_text(dm, f"profile set photo {ok}")
    await member.wait_for_notice(dm, f"photo: {ok}", sender=bot)
    await wait_until(lambda: _is(avatar, ok), what="the PNG photo as avatar")
    also = await member.upload(image("JPEG"), "image/jpeg", "me.jpg")
    await member.send_file(dm, also, "me.jpg", "image/jpeg", msgtype="m.image")
    await member.wait_for_notice(dm, "Your profile photo is set", sender=bot)
    await wait_until(lambda: _is(avatar, also), what="the JPEG photo as avatar")

    # Profile text shares the name rule: an emoji sequence is fine, a bidi override is named.
    await member.send_text(dm, "profile set designation Developer 👩\u200d💻")
    await member.wait_for_notice(dm, "designation: Developer 👩\u200d💻", sender=bot)
    await member.send_text(dm, "profile set designation CTO\u202e")
    await member.wait_for_notice(dm, "U+202E RIGHT-TO-LEFT OVERRIDE at position 4", sender=bot)


async def _count(client: MatrixClient, room_id: str, bot: str, text: str, at_least: int) -> bool:
    return sum(text in body for body in await bot_notices(client, room_id, bot)) >= at_least


async def _is(read, expected) -> bool:
    return await read() == expected
