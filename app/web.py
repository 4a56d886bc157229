"""The browser pages: the operator console at `/` and the files the pages load.

Everything comes from the repository's `web/` folder, on this host only, under a strict
Content-Security-Policy (no inline script, no other host) and `nosniff`:

- `/`: the console (`web/console/index.html`); `/assets/console/…`: its scripts and styles;
- `/assets/ide/…`: the start-up script and styles of the GraphQL IDE page at `/graphql`;
- `/assets/vendor/<name>`: an allow-list of files from `web/node_modules`, which `npm ci`
  installs from the committed `web/package-lock.json` (`make setup`). Nothing else there
  is reachable.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The repository's `web/` folder (the package is installed editable, beside it).
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CONSOLE_DIR = WEB_DIR / "console"
IDE_DIR = WEB_DIR / "ide"
NODE_MODULES = WEB_DIR / "node_modules"
VENDOR_PREFIX = "/assets/vendor"

#: Served name -> path under web/node_modules, and its content type. Only these are served.
VENDOR_FILES: Mapping[str, tuple[str, str]] = {
    "react.production.min.js": ("react/umd/react.production.min.js", "text/javascript"),
    "react-dom.production.min.js": (
        "react-dom/umd/react-dom.production.min.js",
        "text/javascript",
    ),
    "graphiql.min.js": ("graphiql/graphiql.min.js", "text/javascript"),
    "graphiql.min.css": ("graphiql/graphiql.min.css", "text/css"),
}

_COMMON_POLICY = (
    "default-src 'self'",
    "connect-src 'self' ws: wss:",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
#: The console: this host only, no inline script or style.
CONSOLE_POLICY = "; ".join(_COMMON_POLICY)
#: GraphiQL inlines its fonts and icons as data: URLs and its dialogs insert <style> tags;
#: scripts stay this host's files only.
IDE_POLICY = "; ".join(
    (
        *_COMMON_POLICY,
        "img-src 'self' data:",
        "font-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",
    )
)

MISSING_VENDOR_MESSAGE = (
    "The GraphQL IDE's files are not installed (web/node_modules is missing or incomplete).\n"
    "Run `make setup` in the repository (it runs `npm ci --prefix web`), then reload.\n"
)


def page_headers(policy: str) -> dict[str, str]:
    """The headers of every page and asset this module serves."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # Revalidate every time: a 304 is cheap, and a new release is seen at once.
        "Cache-Control": "no-cache",
    }


def missing_vendor_files() -> list[str]:
    """The allow-listed vendor files that `npm ci` has not installed (empty: all there)."""
    return [name for name, (path, _) in VENDOR_FILES.items() if not (NODE_MODULES / path).is_file()]


def vendor_url(name: str) -> str:
    if name not in VENDOR_FILES:
        raise KeyError(name)
    return f"{VENDOR_PREFIX}/{name}"


class WithHeaders:
    """Adds fixed headers to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def console_index(_: Request) -> Response:
    headers = page_headers(CONSOLE_POLICY)
    index = CONSOLE_DIR / "index.html"
    if not index.is_file():
        return PlainTextResponse("The console's files are missing.", 404, headers=headers)
    return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)


async def vendor_file(request: Request) -> Response:
    headers = page_headers(IDE_POLICY)
    entry = VENDOR_FILES.get(request.path_params["name"])
    if entry is None:
        return PlainTextResponse("Not Found", 404, headers=headers)
    path, media_type = entry
    if not (NODE_MODULES / path).is_file():
        return PlainTextResponse(MISSING_VENDOR_MESSAGE, 503, headers=headers)
    return FileResponse(
        NODE_MODULES / path, media_type=f"{media_type}; charset=utf-8", headers=headers
    )


def web_routes() -> list[BaseRoute]:
    """The console page and the assets of both pages, to mount beside the APIs."""
    console_files = StaticFiles(directory=CONSOLE_DIR, check_dir=False)
    ide_files = StaticFiles(directory=IDE_DIR, check_dir=False)
    return [
        Route("/", console_index),
        Mount("/assets/console", app=WithHeaders(console_files, page_headers(CONSOLE_POLICY))),
        Mount("/assets/ide", app=WithHeaders(ide_files, page_headers(IDE_POLICY))),
        Route(f"{VENDOR_PREFIX}/{{name}}", vendor_file),
    ]
