"""The engine when the destination misbehaves: 429 with Retry-After, 5xx, a batch refused
whole, rows refused inside a 200 — counts and row results exact, refused rows retried."""

from __future__ import annotations

from sqlmodel import col, select

from app.runtime import Runtime
from models import RowResult
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_sync
from tests.sync.test_engine import MAPPING, Harness, held_by

AUDIENCE = {i: f"m{i}@x" for i in range(1, 10)}


async def test_counts_and_row_results_are_exact_whatever_the_destination_does(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(
        runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 3}
    )
    h = Harness(runtime, sync, hook_url, attempts=3)
    receiver.script.extend([Scripted(429, {"Retry-After": "0"}), Scripted(500)])
    receiver.poison_ids = {"5"}  # its batch (4, 5, 6) is refused whole: bisected
    receiver.reject_ids = {"8"}  # refused alone inside a 200
    first = await h.run(AUDIENCE)
    assert first.status == RunStatus.partial
    assert first.planned["add"] == 9 and first.succeeded["add"] == 7 and first.failed["add"] == 2
    assert held_by(receiver) == {k: v for k, v in AUDIENCE.items() if k not in (5, 8)}
    async with runtime.database.session() as session:
        rows = (
            (await session.execute(select(RowResult).where(col(RowResult.run_id) == first.id)))
            .scalars()
            .all()
        )
    assert sorted((r.member_key, r.status, r.operation) for r in rows) == [
        ("5", "rejected", "add"),
        ("8", "rejected", "add"),
    ]
    assert "400" in next(r.error for r in rows if r.member_key == "5")
    assert next(r.error for r in rows if r.member_key == "8") == "invalid record 8"

    receiver.poison_ids, receiver.reject_ids = set(), set()
    second = await h.run(AUDIENCE)  # the refused rows were never held: they go again
    assert second.status == RunStatus.succeeded
    assert second.succeeded == {"add": 2, "update": 0, "remove": 0} and second.unchanged == 7
    assert held_by(receiver) == AUDIENCE
