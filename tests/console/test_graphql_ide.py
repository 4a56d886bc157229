"""The GraphQL IDE at /graphql: our page, whose React and GraphiQL files this server serves
from web/node_modules (installed by `make setup`), so the browser asks no other host."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from app import web
from tests.console.browser import Console, Recorded, screenshot
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import create_world
from tests.runs.test_trigger import hooked_sync

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}


@pytest.fixture
def ide_files() -> None:
    """The IDE's npm files are installed (fails, never skips, saying how to install them)."""
    missing = web.missing_vendor_files()
    if missing:
        pytest.fail(
            f"web/node_modules lacks {', '.join(missing)}: run `make setup` (npm ci --prefix web)",
            pytrace=False,
        )


@pytest.mark.usefixtures("ide_files")
async def test_the_ide_page_references_only_local_assets_and_each_is_served(
    console: Console,
) -> None:
    async with httpx.AsyncClient(base_url=console.base) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == web.IDE_POLICY
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "unpkg" not in page.text and "://" not in page.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert {f"/assets/vendor/{name}" for name in web.VENDOR_FILES} <= set(assets)
        assert "/assets/ide/ide.js" in assets
        for asset in assets:
            assert asset.startswith("/assets/"), asset
            response = await client.get(asset)
            assert response.status_code == 200, asset
            suffix = asset[asset.rindex(".") :]
            if suffix in CONTENT_TYPES:
                assert response.headers["content-type"].startswith(CONTENT_TYPES[suffix]), asset
            assert response.headers["x-content-type-options"] == "nosniff"
        # Only the allow-list is reachable in node_modules.
        for path in ("graphiql.js", "graphiql%2Fpackage.json", "..%2Fpackage-lock.json"):
            assert (await client.get(f"/assets/vendor/{path}")).status_code == 404


@pytest.mark.usefixtures("ide_files")
async def test_the_ide_renders_and_runs_a_query_with_no_external_request(
    page: tuple[Page, Recorded], console: Console
) -> None:
    tab, recorded = page
    world = await create_world(console.runtime)
    # Signed in on the console, the IDE sends the same token.
    await tab.goto("/")
    await tab.evaluate(f"localStorage.setItem('signalsmith.token', {world.viewer_token!r})")
    await tab.goto("/graphql")
    await expect(tab.locator(".graphiql-container")).to_be_visible(timeout=30_000)
    await expect(tab.locator(".graphiql-query-editor")).to_be_visible()
    await tab.get_by_role("button", name=re.compile("Execute query")).click()
    await expect(tab.locator(".result-window")).to_contain_text('"role": "viewer"', timeout=30_000)
    # The schema loaded (introspection) and the dialogs open under the page's policy.
    await tab.get_by_role("button", name="Show Documentation Explorer").click()
    await expect(tab.locator(".graphiql-doc-explorer")).to_contain_text("SyncRunEvent")
    await tab.get_by_role("button", name="Open settings dialog").click()
    await expect(tab.get_by_role("dialog")).to_be_visible()
    await tab.keyboard.press("Escape")
    await screenshot(tab, "graphql-ide")
    assert recorded.foreign() == []
    assert not any(world.viewer_token in url for url in recorded.urls)
    assert recorded.errors == []


@pytest.mark.usefixtures("ide_files")
async def test_the_ide_streams_a_subscription_over_the_local_websocket(
    page: tuple[Page, Recorded], console: Console, receiver: Receiver, hook_url: str
) -> None:
    tab, recorded = page
    world = await create_world(console.runtime)
    sync = await hooked_sync(console.runtime, world, hook_url)
    # The receiver holds the batch a second: the run ends well after the subscription is up.
    receiver.script.append(Scripted(200, delay=1.0))
    await tab.goto("/")
    await tab.evaluate(f"localStorage.setItem('signalsmith.token', {world.viewer_token!r})")
    await tab.goto("/graphql")
    editor = tab.locator(".graphiql-query-editor .CodeMirror")
    await expect(editor).to_be_visible(timeout=30_000)
    await editor.evaluate(
        "(node, query) => node.CodeMirror.setValue(query)",
        "subscription { workspaceRunUpdates { syncId status } }",
    )
    # GraphiQL takes an edit in after a short debounce, when it stores the query.
    await tab.wait_for_function(
        "() => (localStorage.getItem('graphiql:query') || '').includes('workspaceRunUpdates')"
    )
    async with tab.expect_websocket() as opened:
        await tab.get_by_role("button", name=re.compile("Execute query")).click()
    socket = await opened.value
    assert socket.url == console.base.replace("http://", "ws://") + "/graphql"
    async with httpx.AsyncClient(base_url=console.base) as client:
        triggered = await client.post(
            f"/api/v1/workspaces/{world.workspace_id}/audience-syncs/{sync.id}/trigger",
            headers=world.headers("editor"),
        )
    assert triggered.status_code == 201
    result = tab.locator(".result-window")
    await expect(result).to_contain_text('"status": "succeeded"', timeout=30_000)
    await expect(result).to_contain_text(str(sync.id))
    assert recorded.foreign() == []
    assert recorded.errors == []


async def test_the_ide_asks_for_make_setup_when_its_files_are_missing(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "NODE_MODULES", web.WEB_DIR / "no-such-node_modules")
    async with httpx.AsyncClient(base_url=console.base) as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        asset = await client.get("/assets/vendor/graphiql.min.js")
        console_page = await client.get("/")
    assert page.status_code == 503 and "make setup" in page.text
    assert asset.status_code == 503
    assert console_page.status_code == 200  # the console needs no npm
