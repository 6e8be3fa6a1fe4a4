"""Consent to the policy version (P8), as a member experiences it in their client."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from clutto_bridge.clock import ManualClock
from tests.integration.conftest import Bridges
from tests.integration.helpers import Api, bot_chat, openid_api, power_level, team_with_member
from tests.integration.matrix_client import MatrixClient, MatrixError, wait_until


async def can_send(user: MatrixClient, room_id: str) -> bool:
    try:
        await user.send_text(room_id, "hello team")
    except MatrixError as e:
        assert e.status == 403, e
        return False
    return True


@pytest.mark.promise("P8")
async def test_block_mode_holds_sending_until_the_member_accepts(
    bridges: Bridges, new_user, http: aiohttp.ClientSession
) -> None:
    bridge = await bridges.start(bridges.settings(policy__consent__mode="block"))
    bot = bridge.settings.bot_mxid
    version = bridge.settings.consent.version
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    general = rooms[0]

    dm = await bot_chat(bridge, member)
    await member.wait_for_notice(dm, f"please read our privacy policy (version {version})", sender=bot)
    await member.wait_for_notice(dm, "you can read your team's rooms but not send in them", sender=bot)
    assert not await can_send(member, general)
    assert await power_level(owner, general, member.user_id) == -1

    # Bad input changes nothing.
    await member.send_text(dm, "accept 1999-01")
    await member.wait_for_notice(dm, "There is no policy version '1999-01'", sender=bot)
    assert not await can_send(member, general)
    as_member = await openid_api(bridge, http, member)
    status, body = await as_member.call("POST", f"/users/{quote(member.user_id)}/consent", json={"version": "0.1"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    # The operator cannot consent on a member's behalf.
    status, body = await Api(bridge, http).call(
        "POST", f"/users/{quote(member.user_id)}/consent", json={"version": version}
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

    as_owner = await openid_api(bridge, http, owner)
    status, overview = await as_owner.call("GET", f"/teams/{team.id}/consent")
    assert status == 200 and overview["mode"] == "block"
    assert {m["user_id"]: (m["consented"], m["blocked"]) for m in overview["members"]} == {
        owner.user_id: (False, True),
        member.user_id: (False, True),
    }
    status, body = await as_member.call("GET", f"/teams/{team.id}/consent")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

    await member.send_text(dm, "policy")
    await member.wait_for_notice(dm, f"Privacy policy, version {version}", sender=bot)
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, f"you accepted privacy policy version {version}", sender=bot)
    assert await can_send(member, general)
    for room_id in [team.space_id, *rooms]:
        assert await power_level(owner, room_id, member.user_id) == 0
    status, consent = await as_member.call("GET", f"/users/{quote(member.user_id)}/consent")
    assert status == 200 and consent["consented"] and [a["version"] for a in consent["accepted"]] == [version]
    status, overview = await Api(bridge, http).call("GET", f"/teams/{team.id}/consent")
    assert {m["user_id"]: (m["last_accepted"], m["blocked"]) for m in overview["members"]} == {
        owner.user_id: (None, True),
        member.user_id: (version, False),
    }
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, "You already accepted", sender=bot)


def policy_folder(tmp_path: Path, *versions: tuple[str, str, bool]) -> Path:
    folder = tmp_path / "policy"
    folder.mkdir(exist_ok=True)
    for version, published, reconsent in versions:
        (folder / f"{version}.md").write_text(
            f"---\npublished: {published}\nreconsent: {str(reconsent).lower()}\n"
            f"summary: Summary of version {version}.\n---\nFull text of {version}.\n"
        )
    return folder


@pytest.mark.promise("P8")
async def test_new_version_is_announced_to_every_member_and_asks_again(
    bridges: Bridges, new_user, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    folder = policy_folder(tmp_path, ("v1", "2026-01-01", True), ("v2", "2026-06-01", True))
    first = await bridges.start(bridges.settings(policy__version="v1", policy__consent__texts=str(folder)))
    bot = first.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(first, new_user)
    dms = {u.user_id: await bot_chat(first, u) for u in (owner, member)}
    await member.wait_for_notice(dms[member.user_id], "Summary of version v1.", sender=bot)
    as_member = await openid_api(first, http, member)
    status, consent = await as_member.call("POST", f"/users/{quote(member.user_id)}/consent", json={"version": "v1"})
    assert status == 200 and consent["consented"]
    await bridges.stop(first)

    second = await bridges.start(bridges.settings(policy__version="v2", policy__consent__texts=str(folder)))
    for user in (owner, member):
        await user.wait_for_notice(dms[user.user_id], "the privacy policy is now version v2", sender=bot)
        await user.wait_for_notice(dms[user.user_id], "Send accept to agree to version v2", sender=bot)
    as_member = await openid_api(second, http, member)
    status, consent = await as_member.call("GET", f"/users/{quote(member.user_id)}/consent")
    assert consent["current_version"] == "v2" and not consent["consented"]
    status, body = await as_member.call("POST", f"/users/{quote(member.user_id)}/consent", json={"version": "v1"})
    assert status == 400 and "not the current policy" in body["error"]
    status, policy = await as_member.call("GET", "/policy")
    assert (policy["version"], policy["versions"], policy["text"]) == ("v2", ["v1", "v2"], "Full text of v2.")

    # A restart announces nothing twice.
    await bridges.stop(second)
    third = await bridges.start(bridges.settings(policy__version="v2", policy__consent__texts=str(folder)))
    assert await third.onboarding.announce() == 0
    notices = [
        e for e in await member.messages(dms[member.user_id]) if "now version v2" in e["content"].get("body", "")
    ]
    assert len(notices) == 1


@pytest.mark.promise("P8")
async def test_a_version_without_reconsent_needs_no_action(bridges: Bridges, new_user, tmp_path: Path) -> None:
    folder = policy_folder(tmp_path, ("v1", "2026-01-01", True), ("v1.1", "2026-02-01", False))
    bridge = await bridges.start(bridges.settings(policy__version="v1", policy__consent__texts=str(folder)))
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, "you accepted privacy policy version v1", sender=bridge.settings.bot_mxid)
    await bridges.stop(bridge)
    bridge = await bridges.start(bridges.settings(policy__version="v1.1", policy__consent__texts=str(folder)))
    await member.wait_for_notice(dm, "now version v1.1", sender=bridge.settings.bot_mxid)
    await member.wait_for_notice(dm, "No action is needed from you", sender=bridge.settings.bot_mxid)
    assert await bridge.consent.has_consented(member.user_id)


@pytest.mark.promise("P8")
async def test_members_are_reminded_until_they_accept_and_fill_their_profile(bridges: Bridges, new_user) -> None:
    clock = ManualClock()
    bridge = await bridges.start(clock=clock)
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    await member.wait_for_notice(dm, "Your profile still needs", sender=bot)
    assert await bridge.onboarding.remind_due() == 0  # told just now
    clock.advance(bridge.settings.reminder_interval * 1000 + 1)
    assert await bridge.onboarding.remind_due() == 2  # owner and member
    await member.wait_for_notice(dm, "Reminder: please accept the privacy policy", sender=bot)
    assert await bridge.onboarding.remind_due() == 0  # not again before the interval
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, "Thank you", sender=bot)
    for field, value in (("first_name", "Ada"), ("last_name", "Lovelace")):
        await member.send_text(dm, f"profile set {field} {value}")
        await member.wait_for_notice(dm, f"{field}: {value}", sender=bot)
    clock.advance(bridge.settings.reminder_interval * 1000 + 1)
    assert await bridge.onboarding.remind_due() == 1  # only the owner is still missing things


@pytest.mark.promise("P8")
async def test_a_reconsent_version_blocks_again_in_block_mode(bridges: Bridges, new_user, tmp_path: Path) -> None:
    folder = policy_folder(tmp_path, ("v1", "2026-01-01", True), ("v2", "2026-06-01", True))
    settings = {"policy__consent__mode": "block", "policy__consent__texts": str(folder)}
    bridge = await bridges.start(bridges.settings(policy__version="v1", **settings))
    bot = bridge.settings.bot_mxid
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    dm = await bot_chat(bridge, member)
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, "you accepted privacy policy version v1", sender=bot)
    assert await can_send(member, rooms[0])
    await bridges.stop(bridge)

    bridge = await bridges.start(bridges.settings(policy__version="v2", **settings))
    await member.wait_for_notice(dm, "the privacy policy is now version v2", sender=bot)

    async def held_back() -> bool:
        return await power_level(owner, rooms[0], member.user_id) == -1

    await wait_until(held_back, what="the member to be held back until they accept v2")
    assert not await can_send(member, rooms[0])
    await member.send_text(dm, "accept")
    await member.wait_for_notice(dm, "you accepted privacy policy version v2", sender=bot)
    assert await can_send(member, rooms[0])
