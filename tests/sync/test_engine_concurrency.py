"""Several batches in flight at once: never more than the run's `concurrency`, rows and counts
exact whatever the destination does to each, and a cancel or a time limit that stops the run
after the batches in flight, all of them recorded."""

from __future__ import annotations

import asyncio
import threading

from sqlmodel import col, func, select
from starlette.requests import Request
from starlette.responses import Response

from app.runs import transition_run
from app.runtime import Runtime
from models import RowResult, SyncedMember, SyncRun
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_sync
from tests.servers import serve_in_thread
from tests.sync.test_engine import MAPPING, Audience, Harness, held_by

AUDIENCE: Audience = {i: f"m{i}@x" for i in range(1, 41)}


class OverlapReceiver(Receiver):
    """Each batch takes `delay`; records how many were being answered at once, at most."""

    def __init__(self, delay: float = 0.05) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0
        self.acknowledged = 0
        self.reached = threading.Event()
        self.watch = 0  #: `reached` is set once this many batches were acknowledged

    async def hook(self, request: Request) -> Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            response = await super().hook(request)
        finally:
            self.in_flight -= 1
        self.acknowledged += 1
        if self.watch and self.acknowledged >= self.watch:
            self.reached.set()
        return response


async def held_count(runtime: Runtime, sync_id: object) -> int:
    async with runtime.database.session() as session:
        held = await session.execute(
            select(func.count())
            .select_from(SyncedMember)
            .where(col(SyncedMember.sync_id) == sync_id)
        )
        return int(held.scalar_one())


async def test_batches_go_out_side_by_side_within_the_bound(runtime: Runtime, world: World) -> None:
    receiver = OverlapReceiver()
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 3}
        )
        h = Harness(runtime, sync, f"{base}/hook", concurrency=4)
        first = await h.run(AUDIENCE)
        assert first.status == RunStatus.succeeded
        assert 2 <= receiver.most_in_flight <= 4  # 14 batches, 4 at a time at most
        assert first.succeeded == {"add": 40, "update": 0, "remove": 0} == first.planned
        assert held_by(receiver) == AUDIENCE and await held_count(runtime, sync.id) == 40
        assert receiver.requests == 14 and first.progress == 1.0

        # Half change, a quarter leave (removals go out several batches at once too).
        changed = {k: (v if k % 2 else f"new{k}@x") for k, v in AUDIENCE.items() if k <= 30}
        second = await h.run(changed)
        assert second.succeeded == {"add": 0, "update": 15, "remove": 10} == second.planned
        assert second.unchanged == 15 and held_by(receiver) == changed
        assert await held_count(runtime, sync.id) == 30 and receiver.most_in_flight <= 4
        quiet = await h.run(changed)
        assert quiet.planned == {"add": 0, "update": 0, "remove": 0} and quiet.unchanged == 30


async def test_a_batch_refused_among_batches_in_flight_is_counted_exactly(
    runtime: Runtime, world: World
) -> None:
    receiver = OverlapReceiver()
    receiver.script.extend([Scripted(200), Scripted(500), Scripted(429, {"Retry-After": "0"})])
    receiver.poison_ids = {"17"}  # its batch is refused whole: bisected down to 17
    receiver.reject_ids = {"33"}  # refused alone inside a 200
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 4}
        )
        h = Harness(runtime, sync, f"{base}/hook", attempts=3, concurrency=3)
        run = await h.run(AUDIENCE)
        assert run.status == RunStatus.partial and receiver.most_in_flight <= 3
        assert run.planned["add"] == 40 and run.succeeded["add"] == 38 and run.failed["add"] == 2
        assert held_by(receiver) == {k: v for k, v in AUDIENCE.items() if k not in (17, 33)}
        assert await held_count(runtime, sync.id) == 38
        async with runtime.database.session() as session:
            rows = await session.execute(select(RowResult).where(col(RowResult.run_id) == run.id))
            refused = sorted((r.member_key, r.status) for r in rows.scalars().all())
        assert refused == [("17", "rejected"), ("33", "rejected")]
        receiver.poison_ids, receiver.reject_ids = set(), set()
        again = await h.run(AUDIENCE)
        assert again.succeeded["add"] == 2 and again.unchanged == 38
        assert held_by(receiver) == AUDIENCE


async def cancel_once_reached(runtime: Runtime, receiver: OverlapReceiver, sync_id: object) -> None:
    assert await asyncio.to_thread(receiver.reached.wait, 30)
    async with runtime.database.session() as session:
        run = (
            await session.execute(select(SyncRun).where(col(SyncRun.sync_id) == sync_id))
        ).scalar_one()
        await transition_run(session, run, RunStatus.cancelling)


async def test_cancel_waits_for_the_batches_in_flight_and_records_them(
    runtime: Runtime, world: World
) -> None:
    receiver = OverlapReceiver(delay=0.2)
    receiver.watch = 2
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 2}
        )
        h = Harness(runtime, sync, f"{base}/hook", concurrency=3)
        running = asyncio.create_task(h.run(AUDIENCE))
        await cancel_once_reached(runtime, receiver, sync.id)
        cancelled = await running
        assert cancelled.status == RunStatus.cancelled
        sent = cancelled.succeeded["add"]
        # Every batch the destination took was acknowledged and recorded: none cut in flight,
        # and nothing was sent once the cancel was seen but the batches then in flight.
        assert 4 <= sent < len(AUDIENCE) and len(receiver.members) == sent
        assert receiver.requests == sent // 2 and await held_count(runtime, sync.id) == sent
        rest = await h.run(AUDIENCE)
        assert rest.succeeded["add"] == len(AUDIENCE) - sent and rest.unchanged == sent
        assert held_by(receiver) == AUDIENCE


async def test_a_time_limit_stops_the_run_after_the_batches_in_flight(
    runtime: Runtime, world: World
) -> None:
    receiver = OverlapReceiver(delay=0.3)
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 5}
        )
        h = Harness(runtime, sync, f"{base}/hook", concurrency=2)
        stopped = await h.run(AUDIENCE, time_limit=0.2)
        assert stopped.status == RunStatus.failed and stopped.error is not None
        assert stopped.error["code"] == "timeout"
        sent = stopped.succeeded["add"]
        assert 5 <= sent < len(AUDIENCE) and stopped.failed["add"] == 0
        assert len(receiver.members) == sent == 5 * receiver.requests
        assert await held_count(runtime, sync.id) == sent
        receiver.delay = 0.0
        rest = await h.run(AUDIENCE)
        assert rest.succeeded["add"] == len(AUDIENCE) - sent and held_by(receiver) == AUDIENCE
