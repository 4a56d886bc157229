"""Sources, models, audiences, previews and split groups computed on a real source (the
world's SQLite file), through REST; the metadata database is SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import (
    CUSTOMER_COLUMNS,
    CUSTOMERS,
    HIGH_VALUE_IDS,
    World,
    create_sync,
    table_counts,
)
from tests.rest.support import base


async def call(
    client: httpx.AsyncClient, world: World, method: str, path: str, body: Any = None
) -> httpx.Response:
    return await client.request(
        method, f"{base(world)}{path}", json=body, headers=world.headers("editor")
    )


def fields_of(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


async def refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    world: World,
    method: str,
    path: str,
    body: Any,
    status: int = 422,
) -> httpx.Response:
    """The call fails with `status` and writes nothing."""
    before = await table_counts(runtime)
    response = await call(client, world, method, path, body)
    assert response.status_code == status, response.text
    assert await table_counts(runtime) == before
    return response


# Preview ---------------------------------------------------------------------------------


async def test_preview_counts_and_samples_the_real_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await call(client, world, "POST", f"/audiences/{world.audience_id}/preview")
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["size"] == len(HIGH_VALUE_IDS) and preview["split_groups"] == []
    expected = [dict(zip(CUSTOMER_COLUMNS, row, strict=True)) for row in CUSTOMERS]
    assert preview["sample"] == [row for row in expected if row["id"] in HIGH_VALUE_IDS]

    chosen = await call(
        client, world, "POST", f"/audiences/{world.audience_id}/preview", {"columns": ["email"]}
    )
    assert chosen.json()["sample"][0] == {"id": 1, "email": "ada@example.com"}


async def test_preview_of_an_unknown_column_names_columns(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    path = f"/audiences/{world.audience_id}/preview"
    response = await refused(client, runtime, world, "POST", path, {"columns": ["nope"]})
    assert fields_of(response) == ["columns"]


async def test_event_and_audience_conditions_preview_on_the_source(
    client: httpx.AsyncClient, world: World
) -> None:
    events = await call(
        client,
        world,
        "POST",
        "/models",
        {"name": "events", "source_id": str(world.source_id), "table": "events",
         "primary_key": "id"},
    )  # fmt: skip
    assert events.status_code == 201, events.text
    buyers = await call(
        client,
        world,
        "POST",
        "/audiences",
        {
            "name": "repeat buyers",
            "model_id": str(world.model_id),
            "filter": {
                "event": {
                    "model_id": events.json()["id"],
                    "key": "customer_id",
                    "timestamp": "at",
                    "where": {"column": "type", "op": "eq", "value": "purchase"},
                    "count": {"op": "gte", "value": 1},
                    "within_days": 30,
                }
            },
        },
    )
    assert buyers.status_code == 201, buyers.text
    preview = await call(client, world, "POST", f"/audiences/{buyers.json()['id']}/preview")
    assert [row["id"] for row in preview.json()["sample"]] == [1, 3]
    both = await call(
        client,
        world,
        "POST",
        "/audiences",
        {
            "name": "high value buyers",
            "model_id": str(world.model_id),
            "filter": {
                "and": [
                    {"audience": {"id": buyers.json()["id"], "member": True}},
                    {"audience": {"id": str(world.audience_id), "member": True}},
                ]
            },
        },
    )
    assert both.status_code == 201, both.text
    preview = await call(client, world, "POST", f"/audiences/{both.json()['id']}/preview")
    assert preview.json()["size"] == 1 and preview.json()["sample"][0]["id"] == 1


# Bad filters, models and sources ---------------------------------------------------------

BAD_FILTERS = [
    ({"column": "nope", "op": "eq", "value": 1}, "filter"),
    ({"and": [{"column": "lifetime_value", "op": "contains", "value": "x"}]}, "filter.and[0]"),
    ({"column": "country", "op": "in", "value": []}, "filter"),
    ({"column": "country", "op": "sideways", "value": "US"}, "filter"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_FILTERS)
async def test_a_bad_filter_is_422_naming_the_condition(
    client: httpx.AsyncClient, runtime: Runtime, world: World, raw: Any, field: str
) -> None:
    body = {"name": "bad", "model_id": str(world.model_id), "filter": raw}
    response = await refused(client, runtime, world, "POST", "/audiences", body)
    assert fields_of(response)[0].startswith(field), response.text
    update = {"filter": raw}
    path = f"/audiences/{world.audience_id}"
    response = await refused(client, runtime, world, "PUT", path, update)
    assert fields_of(response)[0].startswith(field), response.text


async def test_a_cycle_between_audiences_is_422(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    refers = {"audience": {"id": str(world.audience_id), "member": True}}
    other = await call(
        client,
        world,
        "POST",
        "/audiences",
        {"name": "refers", "model_id": str(world.model_id), "filter": refers},
    )
    assert other.status_code == 201, other.text
    back = {"filter": {"audience": {"id": other.json()["id"], "member": False}}}
    response = await refused(client, runtime, world, "PUT", f"/audiences/{world.audience_id}", back)
    assert fields_of(response) == ["filter.audience"]
    assert "cycle" in response.json()["error"]["message"]
    itself = {"filter": {"audience": {"id": str(world.audience_id), "member": True}}}
    await refused(client, runtime, world, "PUT", f"/audiences/{world.audience_id}", itself)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "select id, nope from customers"}, "query"),
        ({"query": "selec id from customers"}, "query"),
        ({"table": "no_such_table"}, "table"),
        ({"table": "customers", "primary_key": "nope"}, "primary_key"),
    ],
)
async def test_a_model_that_does_not_run_is_422(
    client: httpx.AsyncClient, runtime: Runtime, world: World, body: dict[str, Any], field: str
) -> None:
    create = {"name": "m", "source_id": str(world.source_id), "primary_key": "id", **body}
    response = await refused(client, runtime, world, "POST", "/models", create)
    assert fields_of(response) == [field]
    response = await refused(client, runtime, world, "PUT", f"/models/{world.model_id}", body)
    assert fields_of(response) == [field]


async def test_refresh_picks_up_new_columns(client: httpx.AsyncClient, world: World) -> None:
    with sqlite3.connect(world.source_path) as connection:
        connection.execute("ALTER TABLE customers ADD COLUMN score REAL")
    connection.close()
    response = await call(client, world, "POST", f"/models/{world.model_id}/refresh")
    assert response.status_code == 200, response.text
    assert response.json()["columns"][-1] == {"name": "score", "type": "number"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://reader:pw-canary-3e1@127.0.0.1:9/dw",
        "sqlite:///missing-file.db",
        "duckdb:///missing-file.duckdb",
    ],
)
async def test_an_unreachable_source_is_422_without_its_password(
    client: httpx.AsyncClient, runtime: Runtime, world: World, url: str
) -> None:
    source_type = url.split(":")[0].replace("postgresql", "postgres")
    body = {"name": "s", "type": source_type, "config": {"url": url}}
    response = await refused(client, runtime, world, "POST", "/sources", body)
    assert fields_of(response) == ["config.url"]
    assert response.json()["error"]["code"] == "source_error"
    assert "pw-canary-3e1" not in response.text
    update = {"config": {"url": url}}
    response = await refused(client, runtime, world, "PUT", f"/sources/{world.source_id}", update)
    assert "pw-canary-3e1" not in response.text


async def test_check_reports_a_source_that_went_away(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/sources/{world.source_id}/check"
    checked = await client.post(f"{base(world)}{path}", headers=world.headers("viewer"))
    assert checked.status_code == 200 and checked.json() == {"status": "ok"}
    world.source_path.rename(world.source_path.with_suffix(".gone"))
    try:
        failed = await call(client, world, "POST", path)
        assert failed.status_code == 422 and fields_of(failed) == ["config.url"]
    finally:
        world.source_path.with_suffix(".gone").rename(world.source_path)


# Deleting what a filter uses ---------------------------------------------------------------


async def test_deleting_what_a_filter_refers_to_is_409(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    events = await call(
        client,
        world,
        "POST",
        "/models",
        {"name": "events", "source_id": str(world.source_id), "table": "events",
         "primary_key": "id"},
    )  # fmt: skip
    event_filter = {
        "event": {"model_id": events.json()["id"], "key": "customer_id",
                  "count": {"op": "gte", "value": 1}},
    }  # fmt: skip
    made = await call(
        client,
        world,
        "POST",
        "/audiences",
        {"name": "e", "model_id": str(world.model_id), "filter": event_filter},
    )
    assert made.status_code == 201, made.text
    await refused(client, runtime, world, "DELETE", f"/models/{events.json()['id']}", None, 409)
    refers = {"audience": {"id": str(world.audience_id), "member": True}}
    other = await call(
        client,
        world,
        "POST",
        "/audiences",
        {"name": "refers", "model_id": str(world.model_id), "filter": refers},
    )
    assert other.status_code == 201
    await refused(client, runtime, world, "DELETE", f"/audiences/{world.audience_id}", None, 409)
    assert (await call(client, world, "DELETE", f"/audiences/{other.json()['id']}")).is_success
    assert (await call(client, world, "DELETE", f"/audiences/{world.audience_id}")).is_success


# Split groups ----------------------------------------------------------------------------

GROUPS = [
    {"name": "A", "percentage": 45},
    {"name": "B", "percentage": 45},
    {"name": "control", "percentage": 10, "is_holdout": True},
]


async def test_split_groups_round_trip_and_keep_their_ids(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/audiences/{world.audience_id}/split-groups"
    assert (await call(client, world, "GET", path)).json() == []
    put = await call(client, world, "PUT", path, GROUPS)
    assert put.status_code == 200, put.text
    groups = put.json()
    assert [(g["name"], g["percentage"], g["is_holdout"]) for g in groups] == [
        ("A", 45, False), ("B", 45, False), ("control", 10, True),
    ]  # fmt: skip
    assert (await client.get(f"{base(world)}{path}", headers=world.headers("viewer"))).json() == (
        groups
    )
    changed = [{"name": "A", "percentage": 30.5}, {"name": "C", "percentage": 69.5}]
    again = (await call(client, world, "PUT", path, changed)).json()
    assert again[0] == {"id": groups[0]["id"], "name": "A", "percentage": 30.5, "is_holdout": False}
    assert again[1]["id"] not in {g["id"] for g in groups}
    preview = (await call(client, world, "POST", f"/audiences/{world.audience_id}/preview")).json()
    assert [(g["id"], g["name"]) for g in preview["split_groups"]] == [
        (g["id"], g["name"]) for g in again
    ]
    assert sum(g["size"] for g in preview["split_groups"]) == preview["size"]
    assert (await call(client, world, "PUT", path, [])).json() == []


@pytest.mark.parametrize(
    ("groups", "fields"),
    [
        ([{"name": "A", "percentage": 50}, {"name": "B", "percentage": 40}], ["split_groups"]),
        (
            [{"name": "A", "percentage": 110}, {"name": "B", "percentage": -10}],
            ["split_groups[0].percentage", "split_groups[1].percentage"],
        ),
        (
            [{"name": "A", "percentage": 33.333}, {"name": "B", "percentage": 66.667}],
            ["split_groups[0].percentage", "split_groups[1].percentage"],
        ),
        ([{"name": "A", "percentage": "50"}, {"name": "B", "percentage": 50}],
         ["split_groups[0].percentage"]),
        ([{"name": "A", "percentage": 50}, {"name": "A", "percentage": 50}],
         ["split_groups[1].name"]),
        ([{"name": "", "percentage": 100}], ["split_groups[0].name"]),
    ],
)  # fmt: skip
async def test_bad_split_groups_are_422_and_write_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    world: World,
    groups: list[dict[str, Any]],
    fields: list[str],
) -> None:
    path = f"/audiences/{world.audience_id}/split-groups"
    assert (await call(client, world, "PUT", path, GROUPS)).status_code == 200
    response = await refused(client, runtime, world, "PUT", path, groups)
    assert fields_of(response) == fields
    assert [g["name"] for g in (await call(client, world, "GET", path)).json()] == [
        "A", "B", "control",
    ]  # fmt: skip


async def test_a_split_body_that_is_not_an_array_is_400(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    path = f"/audiences/{world.audience_id}/split-groups"
    await refused(client, runtime, world, "PUT", path, {"name": "A"}, 400)
    await refused(client, runtime, world, "PUT", path, [{"name": "A", "percentage": 100,
                                                         "extra": 1}], 400)  # fmt: skip


async def test_a_targeted_group_is_never_removed_nor_a_holdout(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    path = f"/audiences/{world.audience_id}/split-groups"
    groups = (await call(client, world, "PUT", path, GROUPS)).json()
    holdout = groups[2]["id"]
    body = world.sync_body(split_group_id=holdout)
    response = await refused(client, runtime, world, "POST", "/audience-syncs", body)
    assert fields_of(response) == ["split_group_id"]
    await create_sync(runtime, world, split_group_id=groups[0]["id"])
    without_a = [GROUPS[1], {**GROUPS[2], "percentage": 55}]
    await refused(client, runtime, world, "PUT", path, without_a, 409)
    a_as_holdout = [{**GROUPS[0], "is_holdout": True}, *GROUPS[1:]]
    response = await refused(client, runtime, world, "PUT", path, a_as_holdout, 409)
    assert fields_of(response) == ["split_groups[0].is_holdout"]
    renamed_b = [GROUPS[0], {**GROUPS[1], "name": "B2"}, GROUPS[2]]
    assert (await call(client, world, "PUT", path, renamed_b)).status_code == 200
