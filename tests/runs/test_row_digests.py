"""Runs from a PostgreSQL source know their unchanged members by the digest of each member's
COPY line: the held state keeps it, a rerun sends exactly what changed, and a full resync
still resends everyone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.runtime import Runtime
from models.enums import RunStatus
from tests.destinations.receiver import Receiver
from tests.factories import create_world
from tests.runs.pg_source import source_database, table_audience
from tests.runs.test_trigger import hooked_sync, trigger
from tests.sync.test_engine import held_digests

PEOPLE = {k: f"p{k}@example.com" for k in range(1, 41)}
MAPPING = [
    {"source_column": "id", "destination_field": "id"},
    {"source_column": "email", "destination_field": "email"},
    {"source_column": "plan", "destination_field": "plan"},
]


@pytest.fixture
async def people_database() -> AsyncIterator[str]:
    async def fill(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "CREATE TABLE people (id BIGINT PRIMARY KEY, email TEXT, plan TEXT, score NUMERIC)"
        )
        await connection.executemany(
            "INSERT INTO people VALUES ($1, $2, 'pro', 10)", list(PEOPLE.items())
        )

    async with source_database("signalsmith_digest_source", fill) as url:
        yield url


async def execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def test_a_postgres_sync_knows_unchanged_members_by_their_line(
    local_runtime: Runtime, receiver: Receiver, hook_url: str, people_database: str
) -> None:
    world = await create_world(local_runtime)
    audience_id = await table_audience(
        local_runtime,
        world,
        people_database,
        table="people",
        filter={"column": "score", "op": "gte", "value": 5},
    )
    sync = await hooked_sync(
        local_runtime,
        world,
        hook_url,
        audience_id=str(audience_id),
        field_mapping=MAPPING,
        config={"batch_size": 7},
    )
    first = await trigger(local_runtime, world, sync)
    assert first.status == RunStatus.succeeded and first.succeeded["add"] == len(PEOPLE)
    digests = await held_digests(local_runtime, sync.id)
    assert sorted(int(k) for k in digests) == sorted(PEOPLE)
    assert all(d is not None and len(d) == 16 for d in digests.values())
    assert len(set(digests.values())) == len(PEOPLE)

    # Three change, one leaves, one enters; a column the sync does not map changes too.
    await execute(
        people_database,
        "UPDATE people SET email = 'new' || id || '@example.com' WHERE id IN (3, 17, 40);"
        "UPDATE people SET score = 1 WHERE id = 9;"
        "UPDATE people SET score = 99 WHERE id IN (1, 2);"
        "INSERT INTO people VALUES (41, 'p41@example.com', 'free', 10);",
    )
    second = await trigger(local_runtime, world, sync)
    assert second.succeeded == {"add": 1, "update": 3, "remove": 1}
    assert second.unchanged == len(PEOPLE) - 4 and second.query_size == len(PEOPLE)
    expected = {**PEOPLE, 41: "p41@example.com", **{k: f"new{k}@example.com" for k in (3, 17, 40)}}
    del expected[9]
    assert {int(k): v["email"] for k, v in receiver.members.items()} == expected
    after = await held_digests(local_runtime, sync.id)
    assert {k: d for k, d in after.items() if k not in {"3", "17", "40", "41"}} == {
        k: d for k, d in digests.items() if k not in {"3", "17", "40", "9"}
    }
    assert all(after[k] not in (None, digests[k]) for k in ("3", "17", "40"))

    quiet = await trigger(local_runtime, world, sync)
    assert quiet.unchanged == len(expected) and sum(quiet.planned.values()) == 0

    requests = receiver.requests
    resync = await trigger(local_runtime, world, sync, full_resync=True)
    assert resync.succeeded == {"add": 0, "update": len(expected), "remove": 0}
    assert receiver.requests > requests
    assert await held_digests(local_runtime, sync.id) == after
