"""A real browser for the web app's tests: Debian's Chromium driven by Playwright.

Browsers cannot be downloaded where these tests run, so Playwright's own builds are never
used: `launch_chromium` starts the system `/usr/bin/chromium`. `BrowserPage` records what a
careful user would see in the developer console (script errors, CSP violations) so a test
can assert there were none. Screenshots are written only when `NEOLITH_SCREENSHOTS` names a
folder (`docs/screenshots` refreshes the ones in the docs).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from tests.support.seed import PASSWORD

CHROMIUM = os.environ.get("NEOLITH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Playwright's default 5 s is short on a busy shared machine; this bounds waits, it
# asserts no speed.
expect.set_options(timeout=20_000)


@dataclass
class BrowserPage:
    """One tab and the console errors it logged."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    async def login(self, email: str, password: str = PASSWORD) -> None:
        page = self.page
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(password)
        await page.get_by_label("Password").press("Enter")
        await expect(page.get_by_role("button", name="Log out")).to_be_visible()

    async def screenshot(self, name: str) -> None:
        folder = os.environ.get("NEOLITH_SCREENSHOTS")
        if folder:  # Playwright creates the folder
            await self.page.screenshot(path=str(Path(folder) / f"{name}.png"))


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def open_page(
    browser: Browser, url: str, viewport: dict[str, int] | None = None
) -> AsyncIterator[BrowserPage]:
    """A fresh context (no shared storage) with the app open at `url`."""
    context = await browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()
    tab = BrowserPage(context, page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(f"{message.text} ({message.location.get('url', '')})")

    page.on("console", console)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    await page.goto(url)
    try:
        yield tab
    finally:
        await context.close()
