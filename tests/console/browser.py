"""What the browser tests share: Debian's Chromium, a record of what a page asked for, and
screenshots kept as artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Page

from app.runtime import Runtime

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
INSTALL_CHROMIUM = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
)
#: Screenshots of the browser tests land here (kept by CI, ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"


@dataclass
class Recorded:
    """What a page did: every URL it asked for (HTTP and WebSocket) and what it logged."""

    base: str
    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        """Network requests to any other host than the test server."""
        host = urlsplit(self.base).netloc
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).netloc != host
        ]


@dataclass
class Console:
    """The app served for the browser tests, and a runtime on its database (for factories)."""

    base: str
    runtime: Runtime


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
