"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, the app served by a
real uvicorn on its own SQLite file, a real webhook receiver, and a page that records every
request it makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from app.asgi import create_app
from app.db import migrate_async
from app.runtime import Runtime
from app.settings import Settings
from tests.console.browser import CHROMIUM, CHROMIUM_ARGS, INSTALL_CHROMIUM, Console, Recorded
from tests.servers import serve_in_thread


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (never a browser downloaded by Playwright); fails, never skips."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing; the browser tests need Debian's Chromium. Install it "
            f"with: {INSTALL_CHROMIUM}  (bash .ci/run does this)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
async def console(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Console]:
    """The app on its own SQLite file, served over real HTTP and WebSocket; runs execute
    in-process and may reach the receiver on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("console")
    url = f"sqlite+aiosqlite:///{folder / 'signalsmith.db'}"
    await migrate_async(url)
    settings = Settings(
        database_url=url,
        source_files_dir=folder / "sources",
        redis_url=None,
        secret_key=Fernet.generate_key().decode(),
        allow_private_destinations=True,
    )
    runtime = Runtime(settings)
    try:
        with serve_in_thread(create_app(settings), ws="websockets-sansio") as base:
            yield Console(base, runtime)
    finally:
        await runtime.close()


@pytest.fixture
async def page(browser: Browser, console: Console) -> AsyncIterator[tuple[Page, Recorded]]:
    """A fresh browser context (its own local storage) on the test server."""
    context = await browser.new_context(
        base_url=console.base, viewport={"width": 1280, "height": 900}
    )
    recorded = Recorded(console.base)
    page = await context.new_page()
    page.on("request", lambda request: recorded.urls.append(request.url))
    page.on("websocket", lambda socket: recorded.urls.append(socket.url))

    def log(message: ConsoleMessage) -> None:
        if message.type == "error":
            recorded.errors.append(message.text)

    page.on("console", log)
    page.on("pageerror", lambda error: recorded.errors.append(str(error)))
    try:
        yield page, recorded
    finally:
        await context.close()
