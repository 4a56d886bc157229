"""A list of N syncs with their audience and destination costs the same number of SQL
statements whatever N is (batch loads, not one query per row)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import event
from sqlmodel import col, select

from app.runtime import Runtime
from app.services import audiences, destinations
from models import AudienceSync, SyncRun
from models.enums import RunStatus
from tests.factories import World, as_token, create_sync
from tests.graphql.client import data, gql

LIST = """
query Syncs {
  audienceSyncs(first: 50) {
    edges { node { name audience { name } destination { name } } }
  }
}"""


@contextmanager
def counting_statements(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = runtime.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def add_syncs(runtime: Runtime, world: World, start: int, stop: int) -> None:
    """Syncs each with its own audience and destination, so nothing is shared by chance."""
    for i in range(start, stop):
        async with as_token(runtime, world.admin_token) as ctx:
            audience = await audiences.create_audience(
                ctx,
                workspace_id=world.workspace_id,
                data={"name": f"audience {i}", "model_id": str(world.model_id)},
            )
            destination = await destinations.create_destination(
                ctx,
                workspace_id=world.workspace_id,
                data={
                    "name": f"destination {i}",
                    "type": "webhook",
                    "config": {"url": f"https://hooks.example.com/{i}"},
                },
            )
        await create_sync(
            runtime,
            world,
            name=f"sync {i}",
            audience_id=str(audience.id),
            destination_id=str(destination.id),
        )


async def statements_for_list(client: httpx.AsyncClient, runtime: Runtime, world: World) -> int:
    await gql(client, "{ viewer { role } }", token=world.admin_token)  # last_used_at is fresh
    with counting_statements(runtime) as statements:
        body = data(await gql(client, LIST, token=world.admin_token))
    nodes = [edge["node"] for edge in body["audienceSyncs"]["edges"]]
    for node in nodes:
        number = node["name"].removeprefix("sync ")
        assert node["audience"] == {"name": f"audience {number}"}
        assert node["destination"] == {"name": f"destination {number}"}
    return len(statements) if nodes else -1


async def test_statement_count_does_not_grow_with_the_list(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await add_syncs(runtime, world, 0, 3)
    for_three = await statements_for_list(client, runtime, world)
    await add_syncs(runtime, world, 3, 12)
    for_twelve = await statements_for_list(client, runtime, world)
    assert for_three == for_twelve
    # authenticate, count, page, audiences, destinations
    assert for_twelve <= 6


NESTED = """
query Nested {
  audienceSyncs(first: 50) {
    edges { node { name runs(first: 2) { totalCount edges { node { status createdAt } } } } }
  }
  audiences(first: 50) { edges { node { name splitGroups { name } } } }
}"""


async def statements_for_nested(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> tuple[int, dict[str, Any]]:
    await gql(client, "{ viewer { role } }", token=world.admin_token)
    with counting_statements(runtime) as statements:
        body = data(await gql(client, NESTED, token=world.admin_token))
    return len(statements), body


async def add_runs(runtime: Runtime, world: World, start: int) -> dict[str, int]:
    """Sync "sync i" (i ≥ start) gets i % 4 finished runs, an hour apart; returns the count
    of every sync by name."""
    made: dict[str, int] = {}
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(AudienceSync).where(col(AudienceSync.workspace_id) == world.workspace_id)
        )
        for sync in rows.scalars():
            number = int(sync.name.removeprefix("sync "))
            made[sync.name] = count = number % 4
            for hour in range(count if number >= start else 0):
                session.add(
                    SyncRun(
                        sync_id=sync.id,
                        workspace_id=world.workspace_id,
                        status=RunStatus.succeeded if hour % 2 else RunStatus.failed,
                        created_at=datetime(2026, 1, 1, hour, tzinfo=UTC),
                    )
                )
        await session.commit()
    return made


async def test_runs_and_split_groups_of_a_list_are_batch_loaded(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await add_syncs(runtime, world, 0, 2)
    await add_runs(runtime, world, 0)
    few, _ = await statements_for_nested(client, runtime, world)
    await add_syncs(runtime, world, 2, 9)
    made = await add_runs(runtime, world, 2)
    many, body = await statements_for_nested(client, runtime, world)
    assert many == few
    for edge in body["audienceSyncs"]["edges"]:
        node, count = edge["node"], made[edge["node"]["name"]]
        runs = [e["node"] for e in node["runs"]["edges"]]
        assert node["runs"]["totalCount"] == count and len(runs) == min(count, 2)
        stamps = [r["createdAt"] for r in runs]
        assert stamps == sorted(stamps, reverse=True)  # newest first, per sync
    assert all(e["node"]["splitGroups"] == [] for e in body["audiences"]["edges"])
