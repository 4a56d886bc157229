"""The resources the contract implies: workspace, sources, models, audiences, destinations,
tokens, the audit log, and runs by id (cancel, events, rows)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from models import SyncRun
from tests.factories import CUSTOMER_COLUMNS, World, create_sync, table_counts
from tests.rest.support import assert_error, base, create_finished_run
from tests.services import postgres_url_with_password

STAMPS = {"created_by", "created_at", "updated_at"}


async def crud_round_trip(
    client: httpx.AsyncClient,
    world: World,
    collection: str,
    body: dict[str, Any],
    change: dict[str, Any],
) -> dict[str, Any]:
    """Create, list, get, update (only `change` moves) and delete one object."""
    url = f"{base(world)}/{collection}"
    created = await client.post(url, headers=world.headers("editor"), json=body)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["workspace_id"] == str(world.workspace_id)
    assert item["created_at"].endswith("Z") and item["updated_at"].endswith("Z")
    listed = await client.get(url, headers=world.headers("viewer"))
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    assert item in listed.json()
    item_url = f"{url}/{item['id']}"
    assert (await client.get(item_url, headers=world.headers("viewer"))).json() == item
    updated = await client.put(item_url, headers=world.headers("editor"), json=change)
    assert updated.status_code == 200, updated.text
    moved = {k for k in item if updated.json()[k] != item[k]}
    assert moved <= {*change, "updated_at"} and "updated_at" in moved
    deleted = await client.delete(item_url, headers=world.headers("editor"))
    assert deleted.status_code == 200 and deleted.json() == {"status": "deleted"}
    assert_error(await client.get(item_url, headers=world.headers()), 404, item["id"])
    return item


async def test_sources_round_trip_and_hide_the_password(
    client: httpx.AsyncClient, world: World
) -> None:
    item = await crud_round_trip(
        client,
        world,
        "sources",
        {"name": "dw", "type": "postgres", "config": {"url": postgres_url_with_password("pw9")}},
        {"name": "warehouse"},
    )
    assert set(item) == {"id", "workspace_id", "name", "type", "config", *STAMPS}
    assert item["config"] == {"url": postgres_url_with_password("***")}


async def test_models_show_table_not_table_name(client: httpx.AsyncClient, world: World) -> None:
    item = await crud_round_trip(
        client,
        world,
        "models",
        {
            "name": "people",
            "source_id": str(world.source_id),
            "table": "customers",
            "primary_key": "id",
        },
        {"primary_key": "email"},
    )
    assert set(item) == {
        "id", "workspace_id", "source_id", "name", "query", "table", "primary_key", "columns",
        *STAMPS,
    }  # fmt: skip
    assert item["table"] == "customers" and item["query"] is None
    assert [column["name"] for column in item["columns"]] == CUSTOMER_COLUMNS


async def test_a_model_query_replaces_its_table(client: httpx.AsyncClient, world: World) -> None:
    response = await client.put(
        f"{base(world)}/models/{world.model_id}",
        headers=world.headers(),
        json={"query": "select * from customers"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["query"] == "select * from customers"
    assert response.json()["table"] is None


async def test_audiences_round_trip(client: httpx.AsyncClient, world: World) -> None:
    item = await crud_round_trip(
        client,
        world,
        "audiences",
        {
            "name": "vip",
            "model_id": str(world.model_id),
            "filter": {"and": [{"column": "lifetime_value", "op": "gte", "value": 500}]},
        },
        {"description": "big spenders"},
    )
    assert set(item) == {"id", "workspace_id", "model_id", "name", "description", "filter", *STAMPS}
    assert item["filter"] == {"and": [{"column": "lifetime_value", "op": "gte", "value": 500}]}


async def test_destinations_never_echo_secrets(client: httpx.AsyncClient, world: World) -> None:
    body = {
        "name": "hook",
        "type": "webhook",
        "config": {
            "url": "https://hooks.example.com/x",
            "secret": "top-secret-value",
            "headers": {"X-Key": "header-secret-value"},
        },
    }
    item = await crud_round_trip(client, world, "destinations", body, {"name": "renamed"})
    assert set(item) == {"id", "workspace_id", "name", "type", "config", "secret_fields", *STAMPS}
    assert item["config"] == {"url": "https://hooks.example.com/x"}
    assert item["secret_fields"] == ["headers", "secret"]
    assert "secret-value" not in str(item)


@pytest.mark.parametrize(
    ("collection", "attribute"),
    [("sources", "source_id"), ("models", "model_id"), ("audiences", "audience_id"),
     ("destinations", "destination_id")],
)  # fmt: skip
async def test_deleting_what_is_in_use_is_409(
    client: httpx.AsyncClient, runtime: Runtime, world: World, collection: str, attribute: str
) -> None:
    await create_sync(runtime, world)
    before = await table_counts(runtime)
    url = f"{base(world)}/{collection}/{getattr(world, attribute)}"
    error = assert_error(await client.delete(url, headers=world.headers()), 409)
    assert error["code"] == "conflict" and str(getattr(world, attribute)) in error["message"]
    assert await table_counts(runtime) == before


async def test_tokens_are_shown_once_and_revocable(client: httpx.AsyncClient, world: World) -> None:
    url = f"{base(world)}/tokens"
    response = await client.post(
        url,
        headers=world.headers(),
        json={"name": "ci", "email": "ci@example.com", "role": "editor"},
    )
    assert response.status_code == 201, response.text
    minted = response.json()
    assert minted["role"] == "editor" and minted["token"].startswith(minted["prefix"])
    secret = minted["token"]
    listed = (await client.get(url, headers=world.headers())).json()
    assert {item["id"] for item in listed} >= {minted["id"]}
    assert all("token" not in item for item in listed) and secret not in str(listed)
    as_new = {"Authorization": f"Bearer {secret}"}
    assert (await client.get(f"{base(world)}/audiences", headers=as_new)).status_code == 200
    revoked = await client.delete(f"{url}/{minted['id']}", headers=world.headers())
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"].endswith("Z") and "token" not in revoked.json()
    assert_error(await client.get(f"{base(world)}/audiences", headers=as_new), 401)
    assert_error(await client.get(url, headers=world.headers("editor")), 403)


async def test_audit_log_is_for_admins_newest_first(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.post(
        f"{base(world)}/audiences",
        headers=world.headers(),
        json={"name": "latest", "model_id": str(world.model_id)},
    )
    response = await client.get(f"{base(world)}/audit-log", headers=world.headers())
    entries = response.json()
    assert response.status_code == 200
    assert entries[0]["action"] == "audience.create" and entries[0]["detail"] == {"name": "latest"}
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    page = await client.get(
        f"{base(world)}/audit-log", headers=world.headers(), params={"limit": 2, "offset": 1}
    )
    assert page.json() == entries[1:3]
    assert_error(await client.get(f"{base(world)}/audit-log", headers=world.headers("editor")), 403)


async def test_run_events_replay_after_a_cursor(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    run = await create_finished_run(runtime, world, (await create_sync(runtime, world)).id)
    url = f"{base(world)}/runs/{run.id}/events"
    every = (await client.get(url, headers=world.headers("viewer"))).json()
    assert [e["seq"] for e in every] == [1, 2, 3]
    assert set(every[0]) == {"seq", "type", "payload", "at"}
    after = await client.get(url, headers=world.headers(), params={"after": 1})
    assert [e["seq"] for e in after.json()] == [2, 3]
    assert_error(await client.get(url, headers=world.headers(), params={"after": -1}), 422, "after")


async def test_run_rows_filter_by_status(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    run = await create_finished_run(runtime, world, (await create_sync(runtime, world)).id)
    url = f"{base(world)}/runs/{run.id}/rows"
    every = (await client.get(url, headers=world.headers("viewer"))).json()
    assert sorted(row["status"] for row in every) == ["invalid", "rejected"]
    rejected = await client.get(url, headers=world.headers(), params={"status": "rejected"})
    assert [row["member_key"] for row in rejected.json()] == ["k1"]
    assert_error(await client.get(url, headers=world.headers(), params={"status": "ok"}), 422)


async def test_cancel_stops_a_queued_run_and_refuses_a_finished_one(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    finished = await create_finished_run(runtime, world, sync.id)
    before = await table_counts(runtime)
    url = f"{base(world)}/runs/{finished.id}/cancel"
    assert_error(await client.post(url, headers=world.headers()), 409, str(finished.id))
    assert_error(await client.post(url, headers=world.headers("viewer")), 403)
    assert await table_counts(runtime) == before
    async with runtime.database.session() as session:
        queued = SyncRun(sync_id=sync.id, workspace_id=world.workspace_id)
        session.add(queued)
        await session.commit()
    response = await client.post(f"{base(world)}/runs/{queued.id}/cancel", headers=world.headers())
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


@pytest.mark.parametrize("limit", ["0", "101", "ten", ""])
async def test_limit_out_of_range_is_422(
    client: httpx.AsyncClient, world: World, limit: str
) -> None:
    response = await client.get(
        f"{base(world)}/sources", headers=world.headers(), params={"limit": limit}
    )
    assert_error(response, 422, "limit")
