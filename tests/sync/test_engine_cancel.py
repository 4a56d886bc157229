"""Cancel mid-run: the engine stops after the batch in flight; what was acknowledged stays
recorded, nothing after it is sent, and the next run picks up the rest."""

from __future__ import annotations

import asyncio
import threading

from starlette.requests import Request
from starlette.responses import Response

from app.runs import transition_run
from app.runtime import Runtime
from models import SyncRun
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_sync
from tests.servers import serve_in_thread
from tests.sync.test_engine import MAPPING, Harness, held_by

AUDIENCE = {i: f"m{i}@x" for i in range(1, 31)}


class SlowReceiver(Receiver):
    def __init__(self) -> None:
        super().__init__()
        self.second_batch = threading.Event()

    async def hook(self, request: Request) -> Response:
        self.script.append(Scripted(200, delay=0.1))
        response = await super().hook(request)
        if self.requests == 2:
            self.second_batch.set()
        return response


async def test_cancel_stops_after_the_batch_in_flight(runtime: Runtime, world: World) -> None:
    receiver = SlowReceiver()
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 5}
        )
        h = Harness(runtime, sync, f"{base}/hook")
        running = asyncio.create_task(h.run(AUDIENCE))
        assert await asyncio.to_thread(receiver.second_batch.wait, 30)
        async with runtime.database.session() as session:
            rows = await session.execute(
                SyncRun.__table__.select().where(SyncRun.sync_id == sync.id)  # type: ignore[attr-defined]
            )
            run = await session.get(SyncRun, rows.first().id)
            assert run is not None
            await transition_run(session, run, RunStatus.cancelling)
        cancelled = await running
        assert cancelled.status == RunStatus.cancelled
        sent = cancelled.succeeded["add"]
        assert 10 <= sent < len(AUDIENCE) and len(receiver.members) == sent
        rest = await h.run(AUDIENCE)
        assert rest.succeeded["add"] == len(AUDIENCE) - sent and rest.unchanged == sent
        assert held_by(receiver) == AUDIENCE
