"""The privacy portal in a real browser (P5 cookies; P8 consent and P9 roles through the portal).

The member signs in through the link the bot sent to their Matrix chat, and the browser's
own cookie jar shows what the portal set: only the session cookie before a choice, the
registered ones after "accept all", and none but the session cookie after withdrawal.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image

from tests.integration.browser import screenshot_path
from tests.integration.conftest import Bridges
from tests.integration.helpers import portal_bridge, power_level, sign_in_link, team_with_member
from tests.integration.matrix_client import wait_until


async def cookie_names(context) -> set[str]:
    return {c["name"] for c in await context.cookies()}


# One database: the browser's side; links, sessions and cookie choices are stored on both databases in test_portal_access.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P5", "P8")
async def test_member_signs_in_chooses_cookies_and_accepts_the_policy(
    bridges: Bridges, new_user, browser, http: aiohttp.ClientSession
) -> None:
    bridge = await portal_bridge(bridges)
    bot = bridge.settings.bot_mxid
    version = bridge.settings.consent.version
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    link, dm = await sign_in_link(bridge, member)
    registered = {c.name for c in bridge.settings.policy.cookies}

    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(link)
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none': no script at all
    assert headers["x-frame-options"] == "DENY"
    await page.click("#signin")
    await page.wait_for_selector("#cookie-banner")
    # Before any choice: the session cookie only, HttpOnly and SameSite.
    jar = await context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in jar] == [("clutto_session", True, "Lax")]

    # The link worked once: a second browser pressing it is refused with a clear page.
    other = await browser.new_context()
    second = await other.new_page()
    await second.goto(link)
    async with second.expect_response(lambda r: r.request.method == "POST") as pressed:
        await second.click("#signin")
    assert (await pressed.value).status == 403
    assert "used already or has expired" in await second.inner_text("#error-message")
    await other.close()

    # The banner and the cookie page offer only the categories the registry holds a cookie in
    # (preferences; there is no analytics cookie), and "accept all" records only those.
    assert "preferences cookies" in await page.inner_text("#cookie-banner")
    assert "analytics" not in (await page.inner_text("#cookie-banner")).lower()
    await page.click("#cookie-banner button[value=all]")
    await page.wait_for_selector("#cookie-history td")
    assert await cookie_names(context) == registered
    assert await page.locator("#optional-categories input[name=analytics]").count() == 0
    assert await page.locator("#optional-categories input[name=preferences]").is_checked()
    assert [await c.inner_text() for c in await page.locator("#cookie-history tbody td").all()][1] == "preferences"
    await page.click("#necessary-only")
    await page.wait_for_selector("#cookie-history tr:nth-child(2)")
    assert await cookie_names(context) == {"clutto_session"}
    # The privacy page renders the registry.
    await page.goto(link.split("/signin")[0] + "/privacy")
    table = await page.inner_text("#cookie-registry")
    assert all(name in table for name in registered)

    # A member who does not manage the team does not see its page.
    refused = await page.goto(link.split("/signin")[0] + f"/teams/{team.id}")
    assert refused.status == 404 and "No team you own or administer" in await page.inner_text("#error-message")

    # A form without the CSRF token is refused.
    forged = await context.request.post(link.split("/signin")[0] + "/policy/accept", form={"x": "1"})
    assert forged.status == 403

    await page.goto(link.split("/signin")[0] + "/policy")
    await page.click("#accept-policy")
    assert "You have accepted it" in await page.inner_text("#consent-status")
    await page.screenshot(path=screenshot_path("portal-member.png"), full_page=True)
    # The same consent record as the bot's: mydata in the chat says so.
    await member.send_text(dm, "mydata")
    await member.wait_for_notice(dm, f"Policy versions you accepted: {version}", sender=bot)
    download = await context.request.get(link.split("/signin")[0] + "/mydata.json")
    mine = await download.json()
    assert [c["version"] for c in mine["policy_consent"]] == [version]
    assert [c["value"] for c in mine["choices"] if c["choice"] == "cookies"] == ["preferences", "necessary_only"]

    # Profile: the allowed fields and a photo, checked and published as through the bot.
    await page.goto(link.split("/signin")[0] + "/profile")
    await page.fill("input[name=first_name]", "Ann")
    await page.fill("input[name=last_name]", "Lee")
    await page.click("text=Save")
    await page.set_input_files(
        "input[name=photo]", files=[{"name": "me.png", "mimeType": "image/png", "buffer": png()}]
    )
    await page.click("text=Upload photo")
    photo = await page.inner_text("#photo")
    assert photo.startswith("mxc://")

    async def published() -> bool:
        profile = await member.request("GET", f"/v3/profile/{quote(member.user_id)}")
        return profile.get("displayname") == "Ann Lee" and profile.get("avatar_url") == photo

    await wait_until(published, what="the name and photo on the member's Matrix profile")

    # My data: what the person sees is a page in sections with dates, not JSON with epoch
    # milliseconds; the JSON is the download.
    await page.goto(link.split("/signin")[0] + "/mydata")
    assert await page.locator("pre").count() == 0
    shown = await page.inner_text("main")
    assert not re.search(r"\d{13}", shown), "epoch milliseconds on the page"
    assert "First name\tAnn" in await page.inner_text("#mydata-profile")
    assert re.fullmatch(
        rf"Team\tRole\tMembership\tSince\n{re.escape(team.name)}\tmember\tjoined\t"
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC",
        (await page.inner_text("#mydata-teams table")).strip(),
    )
    assert re.search(
        rf"You accepted version {re.escape(version)} on \d{{4}}-\d\d-\d\d \d\d:\d\d UTC\.",
        await page.inner_text("#mydata-policy"),
    )
    choices = [await row.inner_text() for row in await page.locator("#mydata-choices tbody tr").all()]
    assert [c.split("\t", 1)[1] for c in choices] == [
        f"Privacy policy\taccepted version {version}",
        "Portal cookies\tnecessary cookies only",
        "Portal cookies\tpreferences cookies",
    ], choices
    await page.screenshot(path=screenshot_path("portal-mydata.png"), full_page=True)
    async with page.expect_download() as downloading:
        await page.click("#download-mydata")
    download = await downloading.value
    assert download.suggested_filename == "clutto-mydata.json"
    assert json.loads(Path(await download.path()).read_text())["user_id"] == member.user_id
    await context.close()


async def _p13(page, base: str, open_details: bool = True) -> str:
    """The privacy page's verdict on P13, with its dependencies opened as a reader would."""
    response = await page.goto(base + "/portal/privacy")
    assert response.status == 200
    cell = page.locator("#promise-P13 td").nth(2)
    if open_details and await cell.locator("summary").count():
        await cell.locator("summary").click()
    return await cell.inner_text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P13", "P5")
async def test_the_privacy_page_judges_https_on_the_listener_it_is_served_from(
    bridges: Bridges, browser, tmp_path
) -> None:
    from tests.integration.test_tls import make_certificates

    context = await browser.new_context(ignore_https_errors=True)  # the test's own CA
    page = await context.new_page()

    # Plain HTTP on loopback and no proxy declared (as in the demo): weakened, and why.
    bridge = await bridges.start(bridges.settings(policy__collection__trusted_proxies=[]))
    cell = await _p13(page, f"http://127.0.0.1:{bridge.settings.appservice.port}")
    assert cell.startswith("weakened") and "no proxy in front of it is declared" in cell
    await bridges.stop(bridge)

    # Loopback behind the proxy the example declares: kept, depending on that proxy.
    bridge = await bridges.start()
    assert bridge.settings.collection.trusted_proxies
    cell = await _p13(page, f"http://127.0.0.1:{bridge.settings.appservice.port}")
    assert cell.startswith("kept") and "depends on the homeserver/proxy" in cell
    assert "the proxy declared in policy.collection.trusted_proxies serves HTTPS" in cell
    await page.screenshot(path=screenshot_path("portal-privacy.png"), full_page=True)
    await bridges.stop(bridge)

    # TLS on the bridge's own port: kept, served over https, no proxy to depend on.
    (tmp_path / "tls").mkdir()
    certificates = make_certificates(tmp_path / "tls")
    bridge = await bridges.start(
        bridges.settings(
            appservice__tls__cert=str(certificates.cert),
            appservice__tls__key=str(certificates.key),
            policy__collection__trusted_proxies=[],
        )
    )
    cell = await _p13(page, f"https://127.0.0.1:{bridge.settings.appservice.port}")
    assert cell.startswith("kept") and "trusted_proxies" not in cell
    assert "client listener serves HTTPS" in cell  # members' clients still talk to the homeserver
    assert page.url.startswith("https://")
    await context.close()


def png() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (32, 32), (40, 120, 200)).save(image, "PNG")
    return image.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P5", "P9")
async def test_owner_changes_a_role_and_the_homeserver_shows_the_power_level(
    bridges: Bridges, new_user, browser
) -> None:
    bridge = await portal_bridge(bridges)
    owner, member, team, rooms = await team_with_member(bridge, new_user)
    scim_token, _ = await bridge.scim.new_token(team, "Okta", actor=owner.user_id)
    link, _ = await sign_in_link(bridge, owner)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.click("#signin")
    await page.click("#cookie-banner button[value=necessary]")
    await page.goto(link.split("/signin")[0] + f"/teams/{team.id}")
    # The team's SCIM tokens are listed (name, id, never used), never their secrets.
    tokens = await page.locator("#scim-tokens").inner_text()
    assert (
        "Okta" in tokens
        and scim_token.id in tokens
        and "never" in tokens
        and "clutto-scim." not in await page.content()
    )
    row = page.locator("#members tr", has_text=member.user_id)
    await row.locator("select[name=role]").select_option("admin")
    await row.locator("button", has_text="Change role").click()
    await page.wait_for_selector("#audit")

    async def promoted() -> bool:
        return all([await power_level(owner, room_id, member.user_id) == 50 for room_id in [team.space_id, *rooms]])

    await wait_until(promoted, what="the member's power level 50 in every team room")
    assert "admin" in await page.inner_text("#members")
    assert "role_changed" in await page.inner_text("#audit")

    # Retention: set in the page, seen as m.room.retention in the team's rooms; a preview counts.
    await page.fill("input[name=lifetime]", "30d")
    await page.click("text=Set lifetime")
    retention = await owner.state(rooms[0], "m.room.retention")
    assert retention["max_lifetime"] == 30 * 86400 * 1000
    await page.click("text=Preview a sweep")
    assert "A sweep now would remove 0 event(s)" in await page.inner_text("#preview")
    await page.fill("input[name=reason]", "litigation")
    await page.click("text=Place hold")
    assert await page.inner_text("#holds") == "Held: the whole team"
    # Bad input is a clear 400 page, not a traceback.
    await page.fill("input[name=lifetime]", "9999d")
    async with page.expect_response(lambda r: r.request.method == "POST") as refused:
        await page.click("text=Set lifetime")
    assert (await refused.value).status == 400
    assert "Traceback" not in await page.inner_text("body")
    await page.goto(link.split("/signin")[0] + f"/teams/{team.id}")
    await page.screenshot(path=screenshot_path("portal-team.png"), full_page=True)

    # An export started in the page is downloadable there once the job runner finished it.
    team_page = link.split("/signin")[0] + f"/teams/{team.id}"
    async with page.expect_navigation():  # the form's POST and its redirect, before the page is read again
        await page.click("text=Export the team's data")

    async def exported() -> bool:
        await page.goto(team_page)
        return await page.locator("#exports a", has_text="members.json").count() == 1

    await wait_until(exported, timeout=60, what="the export to finish")
    href = await page.locator("#exports a", has_text="members.json").get_attribute("href")
    members = await (await context.request.get(link.split("/portal/")[0] + href)).json()
    assert member.user_id in str(members)
    assert "export_downloaded" in await (await page.goto(link.split("/signin")[0] + f"/teams/{team.id}")).text()

    # Removing the member kicks them from the space on the homeserver.
    row = page.locator("#members tr", has_text=member.user_id)
    await row.locator("button", has_text="Remove").click()

    async def removed() -> bool:
        return member.user_id not in await owner.joined_members(team.space_id)

    await wait_until(removed, what="the member to leave the team's space")
    await context.close()
