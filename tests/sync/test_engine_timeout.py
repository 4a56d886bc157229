"""A run past its time limit stops after the batch in flight and fails with `timeout`; what the
destination acknowledged stays recorded, and the next run continues exactly."""

from __future__ import annotations

from sqlmodel import col, func, select

from app.runtime import Runtime
from models import SyncedMember
from models.enums import RunStatus
from tests.destinations.receiver import Scripted
from tests.factories import World, create_sync
from tests.servers import serve_in_thread
from tests.sync.test_engine import MAPPING, Harness, held_by
from tests.sync.test_engine_cancel import SlowReceiver

AUDIENCE = {i: f"m{i}@x" for i in range(1, 31)}


class VerySlowReceiver(SlowReceiver):
    """Each batch takes longer than the whole run may."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def hook(self, request):  # type: ignore[no-untyped-def]
        self.script.append(Scripted(200, delay=self.delay))
        return await super().hook(request)


async def test_a_run_past_its_time_limit_stops_after_its_batch(
    runtime: Runtime, world: World
) -> None:
    receiver = VerySlowReceiver(delay=0.3)
    with serve_in_thread(receiver.app()) as base:
        sync = await create_sync(
            runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 5}
        )
        h = Harness(runtime, sync, f"{base}/hook")
        stopped = await h.run(AUDIENCE, time_limit=0.2)
        assert stopped.status == RunStatus.failed and stopped.error is not None
        assert stopped.error["code"] == "timeout" and "0.2 s" in stopped.error["message"]
        sent = stopped.succeeded["add"]
        assert sent < len(AUDIENCE) and stopped.failed["add"] == 0
        # Every batch the receiver took was acknowledged and recorded: none cut in flight.
        assert len(receiver.members) == sent == 5 * receiver.requests
        async with runtime.database.session() as session:
            held = await session.execute(
                select(func.count())
                .select_from(SyncedMember)
                .where(col(SyncedMember.sync_id) == sync.id)
            )
            assert held.scalar_one() == sent
        receiver.delay = 0.0
        rest = await h.run(AUDIENCE)
        assert rest.status == RunStatus.succeeded
        assert rest.succeeded["add"] == len(AUDIENCE) - sent and rest.unchanged == sent
        assert held_by(receiver) == AUDIENCE
