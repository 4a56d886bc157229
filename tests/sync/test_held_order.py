"""The held state reads in the membership stream's key order from an index, not a sort of
every held member: text keys by the primary key (compared byte for byte), number keys by
`member_order` on PostgreSQL; rows written before `member_order` existed get theirs at the
next run, which still plans exactly."""

from __future__ import annotations

import uuid

from sqlalchemy import text, update
from sqlmodel import col, select

from app.runtime import Runtime
from app.sync.held import held_query
from models import SyncedMember
from models.enums import RunStatus
from tests.destinations.receiver import Receiver
from tests.factories import World
from tests.sync.test_engine import harness, held_by

#: Text order and number order differ: "10" < "2" < "9" but 2 < 9 < 10.
AUDIENCE = {k: f"m{k}@x" for k in (2, 9, 10, 11, 100, 101, 1000, 5, 50)}


async def _plan(runtime: Runtime, sync_id: uuid.UUID, *, numeric: bool) -> str:
    engine = runtime.database.engine
    query = held_query(engine.dialect.name, sync_id, numeric=numeric)
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    explain = "EXPLAIN" if engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # As on a big table: a plan that can only sort shows it.
            await connection.execute(text("SET LOCAL enable_sort = off"))
        rows = (await connection.execute(text(f"{explain} {compiled}"))).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


async def test_held_state_is_read_from_an_index_in_key_order(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(AUDIENCE)
    postgres = runtime.database.engine.dialect.name == "postgresql"
    text_plan = await _plan(runtime, h.sync.id, numeric=False)
    if postgres:
        assert "Sort" not in text_plan and "synced_members_pkey" in text_plan, text_plan
        number_plan = await _plan(runtime, h.sync.id, numeric=True)
        assert "Sort" not in number_plan, number_plan
        assert "ix_synced_members_order" in number_plan, number_plan
    else:
        assert "TEMP B-TREE" not in text_plan.upper(), text_plan
    async with runtime.database.session() as session:
        held = (
            await session.execute(
                held_query(runtime.database.engine.dialect.name, h.sync.id, numeric=True)
            )
        ).all()
    assert [int(key) for key, _, _ in held] == sorted(AUDIENCE)


async def test_rows_without_an_order_get_one_and_the_run_plans_exactly(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(AUDIENCE)
    # Rows as written before member_order existed: the smaller half has none.
    async with runtime.database.session() as session:
        await session.execute(
            update(SyncedMember)
            .where(col(SyncedMember.sync_id) == h.sync.id)
            .where(col(SyncedMember.member_key).in_([str(k) for k in (2, 5, 9, 10, 11)]))
            .values(member_order=None)
        )
        await session.commit()
    changed = {**AUDIENCE, 9: "changed@x", 7: "new@x"}
    del changed[100]
    run = await h.run(changed)
    assert run.status == RunStatus.succeeded
    assert run.succeeded == {"add": 1, "update": 1, "remove": 1}
    assert run.unchanged == len(AUDIENCE) - 2
    assert held_by(receiver) == changed
    async with runtime.database.session() as session:
        orders = dict(
            (
                await session.execute(
                    select(col(SyncedMember.member_key), col(SyncedMember.member_order)).where(
                        col(SyncedMember.sync_id) == h.sync.id
                    )
                )
            ).all()
        )
    if runtime.database.engine.dialect.name == "postgresql":
        assert {key: int(order) for key, order in orders.items()} == {str(k): k for k in changed}
    else:  # SQLite orders number keys by a cast of the key and keeps no member_order
        assert set(orders) == {str(k) for k in changed} and set(orders.values()) == {None}
