"""Headless Debian Chromium driven by Playwright, for the browser tests.

Never a downloaded browser: ``make browser`` installs Debian's ``chromium`` package, and the
tests launch that binary with a fresh profile directory of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Fail with the fix when Debian's Chromium is not installed."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")


@contextlib.asynccontextmanager
async def chromium_context(profile: Path) -> AsyncIterator[BrowserContext]:
    """A browser context of Debian's Chromium with ``profile`` as its user-data-dir."""
    require_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 720},
            timezone_id="UTC",
        )
        try:
            yield context
        finally:
            await context.close()
