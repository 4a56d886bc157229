"""The run state machine: every (from, to) pair, compare-and-set, events in order."""

from __future__ import annotations

import itertools

import pytest

from app.runs import TERMINAL_STATUSES, TRANSITIONS, IllegalTransition, is_legal, transition_run
from app.runtime import Runtime
from models import SyncRun, SyncRunEvent
from models.enums import RunStatus
from tests.factories import World, create_sync

LEGAL = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


@pytest.mark.parametrize(("current", "to"), list(itertools.product(RunStatus, RunStatus)))
def test_transition_table(current: RunStatus, to: RunStatus) -> None:
    assert is_legal(current, to) == ((current, to) in LEGAL)
    if current in TERMINAL_STATUSES:
        assert not is_legal(current, to)


def test_every_status_is_reachable_and_every_active_one_can_end() -> None:
    reachable = {RunStatus.queued} | {b for _, b in LEGAL}
    assert reachable == set(RunStatus)
    for status in TRANSITIONS:
        assert TRANSITIONS[status] & TERMINAL_STATUSES


async def new_run(runtime: Runtime, world: World) -> SyncRun:
    sync = await create_sync(runtime, world)
    async with runtime.database.session() as session:
        run = SyncRun(sync_id=sync.id, workspace_id=world.workspace_id)
        session.add(run)
        await session.commit()
        return run


async def test_a_run_walks_to_success_with_one_event_per_move(
    runtime: Runtime, world: World
) -> None:
    run = await new_run(runtime, world)
    published: list[SyncRunEvent] = []

    async def publish(event: SyncRunEvent) -> None:
        published.append(event)

    async with runtime.database.session() as session:
        run = await session.get(SyncRun, run.id) or run
        await transition_run(session, run, RunStatus.running, publish=publish, phase="querying")
        assert run.started_at is not None and run.phase == "querying"
        await transition_run(session, run, RunStatus.succeeded, publish=publish)
        assert run.finished_at is not None and run.phase is None
        with pytest.raises(IllegalTransition):
            await transition_run(session, run, RunStatus.running)
    assert [(e.seq, e.payload["status"]) for e in published] == [(1, "running"), (2, "succeeded")]


async def test_compare_and_set_refuses_a_stale_writer(runtime: Runtime, world: World) -> None:
    run = await new_run(runtime, world)
    async with runtime.database.session() as a, runtime.database.session() as b:
        run_a = await a.get(SyncRun, run.id)
        run_b = await b.get(SyncRun, run.id)
        assert run_a and run_b
        await transition_run(a, run_a, RunStatus.running)
        await a.close()
        with pytest.raises(IllegalTransition, match="another writer"):
            await transition_run(b, run_b, RunStatus.cancelled)
    async with runtime.database.session() as session:
        stored = await session.get(SyncRun, run.id)
        assert stored is not None and stored.status == RunStatus.running
