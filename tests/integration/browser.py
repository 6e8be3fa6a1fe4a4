"""A real browser for the portal tests: Debian's chromium driven by Playwright for Python.

No browser is downloaded: Playwright starts the system's chromium (``CLUTTO_CHROMIUM``, else
``chromium`` on the PATH, else /usr/bin/chromium). Where none is installed the tests that
need it are skipped with the reason; CI installs it (``.ci/run``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

ROOT = Path(__file__).resolve().parents[2]
# Screenshots and other artefacts of a test run, for people to look at (not committed).
OUTPUT = Path(os.environ.get("CLUTTO_TEST_OUTPUT", ROOT / ".ci-output"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CLUTTO_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Browser]:
    """The system's chromium under Playwright (the ``browser`` fixture in conftest.py); the test
    is skipped, with the reason, where there is no Playwright or no chromium."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium to drive: install it (apt-get install -y chromium) or set CLUTTO_CHROMIUM")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_path(name: str) -> Path:
    folder = OUTPUT / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
