"""The portal's HTTP behaviour without a browser: headers on every response, refusals as pages,
no cookie for a visitor who only reads, CSRF, and the bot's rate limit on sign-in links."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.integration.conftest import Bridges
from tests.integration.helpers import portal_bridge, sign_in_link, team_with_member


# One database: HTTP headers and refusal pages; what the portal stores is tested on both databases in test_portal_access.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.promise("P5")
async def test_pages_carry_the_security_headers_and_refuse_with_clear_pages(bridges: Bridges, new_user) -> None:
    bridge = await portal_bridge(bridges)
    base = f"http://127.0.0.1:{bridge.settings.appservice.port}/portal"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for path, status, text in [
            ("/privacy", 200, "clutto_prefs"),
            ("/", 401, "You are not signed in"),
            ("/mydata.json", 401, "Send `portal` to the Clutto bot"),
            ("/signin?token=short", 400, "incomplete"),
            ("/nowhere", 404, "Not found"),
            ("/static/portal.css", 200, "--accent"),
        ]:
            async with http.get(base + path) as resp:
                body = await resp.text()
                assert resp.status == status, (path, body)
                assert text in body, (path, body)
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                assert "Traceback" not in body
                assert "Set-Cookie" not in resp.headers, path  # reading sets no cookie
        async with http.get(base + "/privacy") as resp:
            assert re.search(r"<td>P5</td><td>[^<]*cookies[^<]*</td><td>kept</td>", await resp.text())
        async with http.post(base + "/signin", data={"token": "x" * 43}) as resp:
            assert resp.status == 403 and "CSRF" in await resp.text()

        owner, _, _, _ = await team_with_member(bridge, new_user)
        link, dm = await sign_in_link(bridge, owner)
        async with http.get(link) as resp:
            cookie = resp.headers["Set-Cookie"]
            assert re.search(r"clutto_session=[A-Za-z0-9_\-]{40,};", cookie)
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/portal" in cookie
            assert "Secure" not in cookie  # http here; https public URLs get Secure
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
        token = link.split("token=")[1]
        async with http.post(base + "/signin", data={"csrf": csrf, "token": token}, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/portal/"
        async with http.get(base + "/mydata.json") as resp:
            assert resp.status == 200 and (await resp.json())["user_id"] == owner.user_id
            assert resp.headers["Content-Disposition"] == 'attachment; filename="clutto-mydata.json"'

        # Cookie choice, theme and withdrawal as Set-Cookie headers; then signing out ends the session.
        async with http.get(base + "/") as resp:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text()).group(1)
            assert "cookie-banner" in await resp.text()
        async with http.post(base + "/theme", data={"csrf": csrf, "theme": "dark"}) as resp:
            assert resp.status == 409 and "allow preferences" in await resp.text()
        async with http.post(base + "/cookies", data={"csrf": csrf, "choice": "all"}, allow_redirects=False) as resp:
            assert "clutto_prefs=theme-light" in resp.headers["Set-Cookie"]
        async with http.post(base + "/theme", data={"csrf": csrf, "theme": "dark"}) as resp:
            assert '<html lang="en" class="theme-dark">' in await resp.text()
        async with http.post(base + "/cookies", data={"csrf": csrf, "choice": "sometimes"}) as resp:
            assert resp.status == 400 and "choice" in await resp.text()
        async with http.post(
            base + "/cookies", data={"csrf": csrf, "choice": "necessary"}, allow_redirects=False
        ) as resp:
            deleted = resp.headers["Set-Cookie"]
            assert 'clutto_prefs=""' in deleted and "Max-Age=0" in deleted
        assert {c.key for c in http.cookie_jar} == {"clutto_session"}
        session_id = next(iter(http.cookie_jar)).value
        async with http.post(base + "/signout", data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303 and 'clutto_session=""' in resp.headers["Set-Cookie"]
        async with http.get(base + "/") as resp:
            assert resp.status == 401
        # The session ended on the server: its old id, sent again, signs nobody in.
        async with aiohttp.ClientSession() as stranger:
            async with stranger.get(base + "/", headers={"Cookie": f"clutto_session={session_id}"}) as resp:
                assert resp.status == 401

        # More links than portal.links_per_hour: the bot says so instead of sending one.
        for _ in range(bridge.settings.portal.links_per_hour - 1):
            await owner.send_text(dm, "portal")
        await owner.send_text(dm, "portal")
        await owner.wait_for_notice(dm, "sign-in links in the last hour", sender=bridge.settings.bot_mxid)
