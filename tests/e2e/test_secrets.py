"""Canary secrets put in credentials never come back: not in responses, logs or the database."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from app.runtime import Runtime
from tests.factories import World
from tests.services import postgres_url_with_password

CANARIES = {
    "webhook_secret": "canary-7f3a-webhook-secret",
    "header_value": "canary-91bc-header-value",
    "db_password": "canary-55de-db-password",
    "rotated_secret": "canary-a0a0-rotated-secret",
    "rejected_secret": "canary-e1e1-rejected-secret",
    "unreachable_password": "canary-c4c4-unreachable-password",
}


async def gql(client: httpx.AsyncClient, world: World, query: str, **variables: Any) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=world.headers()
    )
    return response


async def exercise_every_path(client: httpx.AsyncClient, world: World) -> list[str]:
    """Create, read, change and fail with credentials through both APIs; return every body."""
    base = f"/api/v1/workspaces/{world.workspace_id}"
    h = world.headers()
    bodies: list[str] = []

    async def keep(response: httpx.Response) -> httpx.Response:
        bodies.append(response.text)
        return response

    dest = await keep(
        await client.post(
            f"{base}/destinations",
            headers=h,
            json={
                "name": "hook",
                "type": "webhook",
                "config": {
                    "url": "https://hooks.example.com/in",
                    "secret": CANARIES["webhook_secret"],
                    "headers": {"X-Api-Key": CANARIES["header_value"]},
                },
            },
        )
    )
    assert dest.status_code == 201, dest.text
    dest_id = dest.json()["id"]
    src = await keep(
        await client.post(
            f"{base}/sources",
            headers=h,
            json={
                "name": "warehouse",
                "type": "postgres",
                "config": {"url": postgres_url_with_password(CANARIES["db_password"])},
            },
        )
    )
    assert src.status_code == 201, src.text
    unreachable = await keep(
        await client.post(
            f"{base}/sources",
            headers=h,
            json={
                "name": "gone",
                "type": "postgres",
                "config": {
                    "url": f"postgresql://reader:{CANARIES['unreachable_password']}@127.0.0.1:9/dw"
                },
            },
        )
    )
    assert unreachable.status_code == 422, unreachable.text
    checked = await keep(await client.post(f"{base}/sources/{src.json()['id']}/check", headers=h))
    assert checked.status_code == 200, checked.text
    assert unreachable.json()["error"]["details"][0]["field"] == "config.url"
    await keep(await client.get(f"{base}/destinations", headers=h))
    await keep(await client.get(f"{base}/destinations/{dest_id}", headers=h))
    await keep(await client.get(f"{base}/sources", headers=h))
    await keep(await client.get(f"{base}/sources/{src.json()['id']}", headers=h))
    updated = await keep(
        await client.put(
            f"{base}/destinations/{dest_id}",
            headers=h,
            json={"config": {"secret": CANARIES["rotated_secret"]}},
        )
    )
    assert updated.status_code == 200, updated.text
    rejected = await keep(
        await client.post(
            f"{base}/destinations",
            headers=h,
            json={
                "name": "bad",
                "type": "webhook",
                "config": {"url": "ftp://nope", "secret": CANARIES["rejected_secret"]},
            },
        )
    )
    assert rejected.status_code == 422
    # Resolves (200) or not (422, offline): the connector's reason never names a secret.
    checked = await keep(await client.post(f"{base}/destinations/{dest_id}/check", headers=h))
    assert checked.status_code in (200, 422), checked.text
    await keep(await client.get(f"{base}/audit-log", headers=h))
    for query in (
        "{ destinations(workspaceId: $w) { edges { node { id name config secretFields } } } }",
        "{ sources(workspaceId: $w) { edges { node { id name config } } } }",
        "{ auditLog(workspaceId: $w) { edges { node { action detail } } } }",
    ):
        wrapped = "query($w: ID!) " + query
        response = await keep(await gql(client, world, wrapped, w=str(world.workspace_id)))
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    return bodies


async def stored_text(runtime: Runtime) -> str:
    """Everything the database holds, as text (SQLite: the raw files, WAL included)."""
    path = runtime.settings.sqlite_path
    if path is not None:
        # Read in another process: closing a descriptor of the database file here would drop
        # every POSIX lock SQLite holds on it in this process, and corrupt it for the others.
        files = [str(p) for p in path.parent.glob(path.name + "*")]
        reader = await asyncio.create_subprocess_exec("cat", *files, stdout=asyncio.subprocess.PIPE)
        raw, _ = await reader.communicate()
        assert reader.returncode == 0
        return raw.decode("latin-1")
    parts: list[str] = []
    async with runtime.database.session() as session:
        for name in SQLModel.metadata.tables:
            rows = await session.execute(text(f"SELECT t::text FROM {name} t"))
            parts.extend(row[0] for row in rows)
    return "\n".join(parts)


async def test_canaries_never_leak(
    client: httpx.AsyncClient, world: World, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        bodies = await exercise_every_path(client, world)
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    stored = await stored_text(runtime)
    for name, canary in CANARIES.items():
        assert all(canary not in body for body in bodies), f"{name} leaked into a response"
        assert canary not in logged, f"{name} leaked into a log line"
        assert canary not in stored, f"{name} is stored in plaintext"
    # The credentials are really kept (encrypted), not dropped.
    async with runtime.context(f"Bearer {world.admin_token}") as ctx:
        from app.services.destinations import destination_config, list_destinations

        page = await list_destinations(ctx, workspace_id=world.workspace_id)
        configs = [destination_config(ctx, d) for d in page.items]
    assert any(c.get("secret") == CANARIES["rotated_secret"] for c in configs)
    assert any(c.get("headers") == {"X-Api-Key": CANARIES["header_value"]} for c in configs)
