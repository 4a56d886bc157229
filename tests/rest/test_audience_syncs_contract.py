"""The published contract (spec/audience-syncs-api.md), replayed example by example."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.queue import InProcessQueue
from app.runtime import Runtime
from models import SyncRun
from tests.factories import World, create_sync, table_counts
from tests.rest.support import RUN_FIELDS, SYNC_FIELDS, assert_error, base, create_finished_run


def spec_create_body(world: World) -> dict[str, Any]:
    """The spec's curl example, with this world's audience and destination ids."""
    return {
        "name": "High-Value Customers to Google Ads",
        "audience_id": str(world.audience_id),
        "destination_id": str(world.destination_id),
        "field_mapping": [{"source_column": "email", "destination_field": "hashedEmail"}],
        "sync_mode": "mirror",
        "schedule": "0 */4 * * *",
    }


def syncs_url(world: World) -> str:
    return f"{base(world)}/audience-syncs"


async def create(client: httpx.AsyncClient, world: World, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        syncs_url(world), headers=world.headers(), json={**spec_create_body(world), **overrides}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def assert_utc_z(*stamps: str | None) -> None:
    for stamp in stamps:
        assert stamp is not None and stamp.endswith("Z") and "+00:00" not in stamp, stamp


async def test_create_with_the_spec_example(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        syncs_url(world), headers=world.headers("editor"), json=spec_create_body(world)
    )
    assert response.status_code == 201, response.text
    sync = response.json()
    assert set(sync) == SYNC_FIELDS
    for field, value in spec_create_body(world).items():
        assert sync[field] == value, field
    assert uuid.UUID(sync["id"])
    assert sync["workspace_id"] == str(world.workspace_id)
    assert sync["description"] == ""
    assert sync["config"] == {}
    assert sync["status"] == "active"
    assert sync["status_error"] == ""
    assert sync["last_synced_at"] is None and sync["last_run_id"] is None
    assert sync["split_group_id"] is None
    assert sync["created_by"] is not None and uuid.UUID(sync["created_by"])
    assert_utc_z(sync["created_at"], sync["updated_at"])


async def test_list_is_a_bare_array_of_spec_objects(
    client: httpx.AsyncClient, world: World
) -> None:
    empty = await client.get(syncs_url(world), headers=world.headers("viewer"))
    assert empty.status_code == 200 and empty.json() == []
    first = await create(client, world)
    second = await create(client, world, name="Second", sync_mode="add")
    response = await client.get(syncs_url(world), headers=world.headers("viewer"))
    assert response.status_code == 200
    listed = response.json()
    assert isinstance(listed, list)
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    assert all(set(item) == SYNC_FIELDS for item in listed)
    assert listed[0] == first


async def test_list_pages_with_limit_and_offset(client: httpx.AsyncClient, world: World) -> None:
    made = [await create(client, world, name=f"sync {n}") for n in range(3)]
    page = await client.get(
        syncs_url(world), headers=world.headers(), params={"limit": 2, "offset": 1}
    )
    assert page.status_code == 200
    assert [item["id"] for item in page.json()] == [made[1]["id"], made[2]["id"]]


async def test_get_returns_the_object(client: httpx.AsyncClient, world: World) -> None:
    created = await create(client, world)
    response = await client.get(
        f"{syncs_url(world)}/{created['id']}", headers=world.headers("viewer")
    )
    assert response.status_code == 200
    assert response.json() == created


async def test_put_changes_only_the_given_fields(client: httpx.AsyncClient, world: World) -> None:
    created = await create(client, world, description="before", config={"batch_size": 500})
    response = await client.put(
        f"{syncs_url(world)}/{created['id']}",
        headers=world.headers("editor"),
        json={"name": "Renamed", "sync_mode": "upsert"},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "Renamed" and updated["sync_mode"] == "upsert"
    unchanged = SYNC_FIELDS - {"name", "sync_mode", "updated_at"}
    assert {k: updated[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert parse_time(updated["updated_at"]) > parse_time(created["updated_at"])
    assert_utc_z(updated["updated_at"])
    again = await client.get(f"{syncs_url(world)}/{created['id']}", headers=world.headers())
    assert again.json() == updated


async def test_put_null_clears_a_nullable_field(client: httpx.AsyncClient, world: World) -> None:
    created = await create(client, world)
    response = await client.put(
        f"{syncs_url(world)}/{created['id']}", headers=world.headers(), json={"schedule": None}
    )
    assert response.status_code == 200, response.text
    assert response.json()["schedule"] is None
    assert response.json()["name"] == created["name"]


async def test_delete_then_the_sync_is_gone(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    created = await create(client, world)
    await create_finished_run(runtime, world, uuid.UUID(created["id"]))
    url = f"{syncs_url(world)}/{created['id']}"
    response = await client.delete(url, headers=world.headers("editor"))
    assert response.status_code == 200
    assert response.json() == {"status": "deleted"}
    assert_error(await client.get(url, headers=world.headers()), 404, created["id"])
    assert_error(await client.delete(url, headers=world.headers()), 404)
    assert (await client.get(syncs_url(world), headers=world.headers())).json() == []


async def test_delete_refused_while_a_run_is_active(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    created = await create(client, world)
    run = await create_finished_run(runtime, world, uuid.UUID(created["id"]), status="running")
    before = await table_counts(runtime)
    response = await client.delete(f"{syncs_url(world)}/{created['id']}", headers=world.headers())
    error = assert_error(response, 409)
    assert error["code"] == "conflict" and str(run.id) in error["message"]
    assert await table_counts(runtime) == before


@pytest.mark.parametrize("mode", ["add", "remove", "mirror", "upsert"])
async def test_each_documented_sync_mode_is_accepted(
    client: httpx.AsyncClient, world: World, mode: str
) -> None:
    created = await create(client, world, sync_mode=mode)
    assert created["sync_mode"] == mode
    fetched = await client.get(f"{syncs_url(world)}/{created['id']}", headers=world.headers())
    assert fetched.json()["sync_mode"] == mode


@pytest.mark.parametrize("status", ["draft", "active", "paused"])
async def test_settable_status_values(client: httpx.AsyncClient, world: World, status: str) -> None:
    created = await create(client, world, status=status)
    assert created["status"] == status
    other = "paused" if status != "paused" else "active"
    response = await client.put(
        f"{syncs_url(world)}/{created['id']}", headers=world.headers(), json={"status": other}
    )
    assert response.status_code == 200 and response.json()["status"] == other


async def test_all_optional_fields_round_trip(client: httpx.AsyncClient, world: World) -> None:
    mapping = [
        {"source_column": "email", "destination_field": "hashedEmail"},
        {"source_column": "country", "destination_field": "countryCode"},
    ]
    created = await create(
        client,
        world,
        description="Sync high-value segment to Google Ads customer match",
        field_mapping=mapping,
        config={"batch_size": 1000, "timezone": "Europe/Paris", "on_exit": "remove"},
    )
    assert created["description"] == "Sync high-value segment to Google Ads customer match"
    assert created["field_mapping"] == mapping
    assert created["config"] == {
        "batch_size": 1000,
        "timezone": "Europe/Paris",
        "on_exit": "remove",
    }


async def test_runs_of_a_new_sync_are_an_empty_array(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    response = await client.get(
        f"{syncs_url(world)}/{sync.id}/runs", headers=world.headers("viewer")
    )
    assert response.status_code == 200 and response.json() == []


async def test_runs_list_and_get_return_run_objects(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    older = await create_finished_run(runtime, world, sync.id, status="succeeded")
    newer = await create_finished_run(runtime, world, sync.id)
    listed = await client.get(f"{syncs_url(world)}/{sync.id}/runs", headers=world.headers())
    runs = listed.json()
    assert [run["id"] for run in runs] == [str(newer.id), str(older.id)]
    assert all(set(run) == RUN_FIELDS for run in runs)
    limited = await client.get(
        f"{syncs_url(world)}/{sync.id}/runs", headers=world.headers(), params={"limit": 1}
    )
    assert [run["id"] for run in limited.json()] == [str(newer.id)]
    response = await client.get(
        f"{syncs_url(world)}/{sync.id}/runs/{newer.id}", headers=world.headers("viewer")
    )
    assert response.status_code == 200
    run = response.json()
    assert run == runs[0]
    assert run["status"] == "partial" and run["sync_id"] == str(sync.id)
    assert run["planned"] == {"add": 4, "update": 0, "remove": 0}
    assert run["error"] is None and run["progress"] == 1.0
    assert_utc_z(run["created_at"], run["started_at"], run["finished_at"])


async def test_a_run_of_another_sync_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    other = await create_sync(runtime, world, name="other")
    run = await create_finished_run(runtime, world, other.id)
    response = await client.get(
        f"{syncs_url(world)}/{sync.id}/runs/{run.id}", headers=world.headers()
    )
    assert_error(response, 404, str(run.id))


@pytest.mark.parametrize("body", [None, {}, {"full_resync": True, "dry_run": True}])
async def test_trigger_answers_201_with_the_queued_run(
    client: httpx.AsyncClient, runtime: Runtime, world: World, body: dict[str, Any] | None
) -> None:
    sync = await create_sync(runtime, world)
    url = f"{syncs_url(world)}/{sync.id}"
    response = await client.post(f"{url}/trigger", headers=world.headers("editor"), json=body)
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "queued" and run["sync_id"] == str(sync.id)
    assert run["full_resync"] == run["dry_run"] == bool(body)
    assert isinstance(runtime.queue, InProcessQueue)
    await runtime.queue.drain()
    done = (await client.get(f"{url}/runs/{run['id']}", headers=world.headers())).json()
    assert done["status"] in ("succeeded", "partial", "failed") and done["finished_at"]
    assert (await client.get(url, headers=world.headers())).json()["last_run_id"] == run["id"]


async def test_trigger_while_a_run_is_active_is_409_naming_it(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    async with runtime.database.session() as session:
        active = SyncRun(sync_id=sync.id, workspace_id=world.workspace_id, status="running")
        session.add(active)
        await session.commit()
    before = await table_counts(runtime)
    response = await client.post(
        f"{syncs_url(world)}/{sync.id}/trigger", headers=world.headers("editor")
    )
    error = assert_error(response, 409, str(active.id))
    assert error["details"] == [{"field": "run_id", "message": str(active.id)}]
    assert await table_counts(runtime) == before


async def test_trigger_checks_its_options_first(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    url = f"{syncs_url(world)}/{sync.id}/trigger"
    assert_error(await client.post(url, headers=world.headers(), json={"dry_run": "soon"}), 422)
    assert_error(await client.post(url, headers=world.headers(), json={"fast": True}), 400, "fast")
    assert_error(await client.post(url, headers=world.headers("viewer"), json={}), 403)
