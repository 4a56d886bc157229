"""Every mutation, through either API, leaves one audit row naming actor, action and target."""

from __future__ import annotations

from typing import Any

import httpx

from app.runtime import Runtime
from app.services.audit import list_audit_log
from tests.factories import World, as_token


def resources(world: World) -> dict[str, tuple[dict[str, Any], str]]:
    return {
        "sources": (
            {"name": "s", "type": "sqlite", "config": {"url": world.source_url}},
            "source",
        ),
        "destinations": (
            {
                "name": "d",
                "type": "webhook",
                "config": {"url": "https://e.example/h", "secret": "k"},
            },
            "destination",
        ),
    }


async def audit_rows(runtime: Runtime, world: World) -> list[Any]:
    async with as_token(runtime, world.admin_token) as ctx:
        return list((await list_audit_log(ctx, workspace_id=world.workspace_id)).items)


async def test_rest_mutations_are_audited(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    base, h = f"/api/v1/workspaces/{world.workspace_id}", world.headers("editor")
    before = len(await audit_rows(runtime, world))
    expected: list[tuple[str, str]] = []
    for path, (body, kind) in resources(world).items():
        made = (await client.post(f"{base}/{path}", json=body, headers=h)).json()
        await client.put(f"{base}/{path}/{made['id']}", json={"name": "n2"}, headers=h)
        await client.delete(f"{base}/{path}/{made['id']}", headers=h)
        expected += [(f"{kind}.{verb}", made["id"]) for verb in ("create", "update", "delete")]
    sync = (await client.post(f"{base}/audience-syncs", json=world.sync_body(), headers=h)).json()
    await client.put(f"{base}/audience-syncs/{sync['id']}", json={"name": "x"}, headers=h)
    await client.delete(f"{base}/audience-syncs/{sync['id']}", headers=h)
    expected += [(f"audience_sync.{v}", sync["id"]) for v in ("create", "update", "delete")]
    token = (
        await client.post(f"{base}/tokens", json={"name": "t"}, headers=world.headers())
    ).json()
    await client.delete(f"{base}/tokens/{token['id']}", headers=world.headers())
    expected += [("api_token.create", token["id"]), ("api_token.revoke", token["id"])]

    rows = (await audit_rows(runtime, world))[: len(await audit_rows(runtime, world)) - before]
    assert sorted((r.action, r.target_id) for r in rows) == sorted(expected)
    editor_rows = [r for r in rows if not r.action.startswith("api_token")]
    assert {r.actor for r in editor_rows} == {r.actor for r in editor_rows[:1]}
    assert all(r.actor != str(world.account_id) for r in editor_rows)  # the editor, not admin
    destination_create = next(r for r in rows if r.action == "destination.create")
    assert "config" not in destination_create.detail or destination_create.detail["config"] == (
        "[redacted]"
    )


async def test_graphql_mutations_are_audited(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = len(await audit_rows(runtime, world))

    async def gql(query: str, **variables: Any) -> Any:
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=world.headers()
        )
        assert "errors" not in response.json(), response.text
        return response.json()["data"]

    made = await gql(
        'mutation($w: ID!) { createAudience(workspaceId: $w, input: {name: "a", '
        f'modelId: "{world.model_id}"}}) {{ id }} }}',
        w=str(world.workspace_id),
    )
    audience_id = made["createAudience"]["id"]
    await gql(
        'mutation($id: ID!) { updateAudience(id: $id, input: {name: "b"}) { id } }', id=audience_id
    )
    await gql("mutation($id: ID!) { deleteAudience(id: $id) }", id=audience_id)
    rows = await audit_rows(runtime, world)
    new = rows[: len(rows) - before]
    assert sorted((r.action, r.target_id) for r in new) == sorted(
        (f"audience.{v}", audience_id) for v in ("create", "update", "delete")
    )
    assert {r.actor for r in new} == {str(world.account_id)}
