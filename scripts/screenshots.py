#!/usr/bin/env python3
"""Refresh docs/screenshots/: the privacy portal as the demo's alice sees it, in Debian's chromium.

    python scripts/screenshots.py [OUTPUT_FOLDER]

Starts ``clutto-bridge demo`` in a temporary folder, signs alice in to the portal through the
link the bot sends her, fills in a little (her name, the policy, a cookie choice) and saves
one full-page screenshot per page. Needs the ``demo`` and ``test`` extras (Synapse, Playwright)
and chromium (``CLUTTO_CHROMIUM``, else on the PATH, else /usr/bin/chromium).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clutto_bridge.demo.synapse import free_port  # noqa: E402
from tests.integration.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.integration.matrix_client import MatrixClient  # noqa: E402

LINK = re.compile(r"https?://\S+/signin\?token=[A-Za-z0-9_\-]+")
WIDTH = 1100


def read_until(process: subprocess.Popen, marker: str) -> str:
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise SystemExit("the demo stopped before it ran:\n" + "".join(seen))


async def shoot(output: str, folder: Path) -> None:
    bot = "@clutto:localhost"
    url = re.search(r"Homeserver URL for any Matrix client: (\S+)", output).group(1)
    users = dict(re.findall(r"(@\w+):\S+\s+password: (\S+)", output))
    space_id = re.search(r"\(space (!\S+)\)", output).group(1)
    async with aiohttp.ClientSession() as http:
        bob = await MatrixClient.login(url, "bob", users["@bob"], http)
        await bob.wait_for_invites({space_id}, timeout=60)
        await bob.join(space_id)
        alice = await MatrixClient.login(url, "alice", users["@alice"], http)
        await alice.wait_for_invites({space_id}, timeout=60)
        await alice.join(space_id)
        dm = await alice.create_dm(bot)
        await alice.wait_for_notice(dm, "help", sender=bot, timeout=60)
        await alice.send_text(dm, "profile set first_name Alice")
        await alice.wait_for_notice(dm, "Alice", sender=bot)
        await alice.send_text(dm, "profile set last_name Liddell")
        await alice.wait_for_notice(dm, "Liddell", sender=bot)
        await alice.send_text(dm, "profile set designation Engineer")
        await alice.wait_for_notice(dm, "Engineer", sender=bot)
        await alice.send_text(dm, "portal")
        reply = await alice.wait_for_notice(dm, "sign-in link", sender=bot)
        link = LINK.search(reply["content"]["body"]).group(0)
    base = link.split("/signin")[0]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": WIDTH, "height": 800})).new_page()
        await page.goto(link)
        await page.click("#signin")
        await page.wait_for_selector("#cookie-banner")
        await page.screenshot(path=folder / "portal-home.png", full_page=True)
        await page.click("#cookie-banner button[value=necessary]")
        await page.goto(base + "/policy")
        if await page.locator("#accept-policy").count():
            await page.click("#accept-policy")
        await page.screenshot(path=folder / "portal-member.png", full_page=True)
        for name, path in (("portal-mydata.png", "/mydata"), ("portal-privacy.png", "/privacy")):
            await page.goto(base + path)
            await page.screenshot(path=folder / name, full_page=True)
        await page.click("nav >> text=Team")
        await page.screenshot(path=folder / "portal-team.png", full_page=True)
        await browser.close()


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if chromium_path() is None:
        raise SystemExit("no chromium: install it (apt-get install -y chromium) or set CLUTTO_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="clutto-screenshots-") as demo:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "CLUTTO_DEMO_PORT": str(free_port())}
        process = subprocess.Popen(
            [sys.executable, "-m", "clutto_bridge", "demo", "--dir", demo],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output = read_until(process, "Press Ctrl-C to stop.")
            print(output, flush=True)
            asyncio.run(shoot(output, folder))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(90)
    print("\n".join(str(p) for p in sorted(folder.glob("portal-*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
