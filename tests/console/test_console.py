"""The operator console at `/` in headless Chromium, against a real server: sign in with a
token, see the syncs, start a run and watch it progress live, list a run's refused rows."""

from __future__ import annotations

from collections import deque

import httpx
from playwright.async_api import Page, expect

from app.web import CONSOLE_POLICY
from tests.console.browser import Console, Recorded, screenshot
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_world
from tests.runs.test_trigger import hooked_sync

LIVE = 30_000  # ms: how long a page may take to show what the server did


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Open the console").click()


def assert_no_leaks(recorded: Recorded, *tokens: str) -> None:
    assert recorded.foreign() == [], recorded.foreign()
    for url in recorded.urls:
        for token in tokens:
            assert token not in url
    assert recorded.errors == []


async def test_an_editor_starts_a_run_and_watches_it_succeed(
    page: tuple[Page, Recorded], console: Console, receiver: Receiver, hook_url: str
) -> None:
    tab, recorded = page
    world = await create_world(console.runtime)
    sync = await hooked_sync(console.runtime, world, hook_url, config={"batch_size": 1})
    # Four batches of one member, each held a moment at the receiver: the run is seen live.
    receiver.script = deque(Scripted(200, delay=0.4) for _ in range(4))

    await sign_in(tab, world.editor_token)
    row = tab.locator(f'tr[data-sync-id="{sync.id}"]')
    await expect(row).to_contain_text(sync.name)
    await expect(row).to_contain_text("never run")
    await expect(tab.locator("#live")).to_have_text("live")
    assert await tab.evaluate("localStorage.getItem('signalsmith.token')") == world.editor_token

    await row.get_by_role("button", name="Run now").click()
    status = row.locator(".run-status")
    await expect(status).to_have_text("running", timeout=LIVE)
    # A second trigger while the run is active is refused, and the page says why.
    await row.get_by_role("button", name="Run now").click()
    await expect(row.get_by_role("alert")).to_contain_text("already in progress", timeout=LIVE)

    await expect(status).to_have_text("succeeded", timeout=LIVE)
    await expect(row.locator(".run-counts")).to_have_text(
        "added 4 · updated 0 · removed 0 of 4", timeout=LIVE
    )
    run_panel = tab.locator("#run")
    await expect(run_panel.locator("#run-status")).to_have_text("succeeded", timeout=LIVE)
    assert await run_panel.locator("#run-progress").evaluate("bar => bar.value") == 1
    await expect(run_panel.locator('[data-count="added"] dd')).to_have_text("4 of 4")
    await expect(run_panel.locator('[data-count="failed"] dd')).to_have_text("0")
    events = run_panel.locator("#run-events li")
    await expect(events.filter(has_text="running → succeeded")).to_have_count(1, timeout=LIVE)
    assert await events.filter(has_text="progress").count() >= 1  # counts arrived live
    await expect(run_panel.locator("#run-rows-empty")).to_have_text(
        "No rejected, invalid or failed rows in this run.", timeout=LIVE
    )
    assert sorted(receiver.members) == ["1", "2", "5", "6"]
    await screenshot(tab, "run-succeeded")
    assert_no_leaks(recorded, world.editor_token)


async def test_rejected_rows_of_a_run_are_listed(
    page: tuple[Page, Recorded], console: Console, receiver: Receiver, hook_url: str
) -> None:
    tab, recorded = page
    world = await create_world(console.runtime)
    sync = await hooked_sync(console.runtime, world, hook_url)
    receiver.reject_ids = {"2"}

    await sign_in(tab, world.admin_token)
    row = tab.locator(f'tr[data-sync-id="{sync.id}"]')
    await row.get_by_role("button", name="Run now").click()
    await expect(row.locator(".run-status")).to_have_text("partial", timeout=LIVE)
    rows = tab.locator("#run-rows tbody tr")
    await expect(rows).to_have_count(1, timeout=LIVE)
    await expect(rows.first).to_contain_text("2")
    await expect(rows.first).to_contain_text("rejected")
    await expect(rows.first).to_contain_text("invalid record 2")
    await screenshot(tab, "run-partial")
    await tab.locator("#row-status").select_option("invalid")
    await expect(tab.locator("#run-rows-empty")).to_have_text("No invalid rows in this run.")
    await expect(rows).to_have_count(0)
    assert_no_leaks(recorded, world.admin_token)


async def test_a_viewer_watches_but_cannot_start_runs(
    page: tuple[Page, Recorded], console: Console, hook_url: str
) -> None:
    tab, recorded = page
    world = await create_world(console.runtime)
    sync = await hooked_sync(console.runtime, world, hook_url)

    await sign_in(tab, world.viewer_token)
    row = tab.locator(f'tr[data-sync-id="{sync.id}"]')
    await expect(row).to_contain_text(sync.name)
    await expect(tab.locator("#role")).to_have_text("viewer")
    await expect(tab.get_by_text("Your role is viewer")).to_be_visible()
    assert await tab.get_by_role("button", name="Run now").count() == 0
    assert_no_leaks(recorded, world.viewer_token)


async def test_a_bad_token_is_refused_clearly_and_forget_token_signs_out(
    page: tuple[Page, Recorded], console: Console
) -> None:
    tab, recorded = page
    world: World = await create_world(console.runtime)

    await sign_in(tab, "ssk_not-a-real-token")
    await expect(tab.get_by_role("alert")).to_have_text(
        "This token was not accepted: it is unknown, revoked or expired. "
        "Check it and paste it again."
    )
    assert await tab.evaluate("localStorage.getItem('signalsmith.token')") is None

    await tab.get_by_label("API token").fill(world.viewer_token)
    await tab.get_by_role("button", name="Open the console").click()
    await expect(tab.locator("#workspace-name")).to_have_text(await workspace_name(console, world))
    await tab.reload()  # the token is remembered
    await expect(tab.locator("#role")).to_have_text("viewer")
    await tab.get_by_role("button", name="Forget token").click()
    await expect(tab.get_by_label("API token")).to_be_visible()
    assert await tab.evaluate("localStorage.getItem('signalsmith.token')") is None
    assert_no_leaks(recorded, world.viewer_token, "ssk_not-a-real-token")


async def test_the_console_is_served_with_a_strict_policy(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.base) as client:
        page = await client.get("/")
        script = await client.get("/assets/console/app.js")
        outside = await client.get("/assets/console/..%2F..%2Fpyproject.toml")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONSOLE_POLICY
    assert "default-src 'self'" in CONSOLE_POLICY and "unsafe-inline" not in CONSOLE_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and "http" not in page.text.replace("http-equiv", "")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["content-security-policy"] == CONSOLE_POLICY
    assert outside.status_code == 404


async def workspace_name(console: Console, world: World) -> str:
    async with httpx.AsyncClient(base_url=console.base) as client:
        response = await client.get(
            f"/api/v1/workspaces/{world.workspace_id}", headers=world.headers("viewer")
        )
    assert response.status_code == 200
    name: str = response.json()["name"]
    return name
