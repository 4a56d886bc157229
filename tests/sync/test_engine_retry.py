"""Refused rows: `retry_failed_only` resends just the rows the last refusing run rejected or
failed that are still members (nothing else, no removals, counts that reconcile), every run
counts what it retries, and `config.retry_failed_rows = false` holds back a row refused with
the payload it would be sent with again."""

from __future__ import annotations

from sqlmodel import col, select

from app.runtime import Runtime
from app.sync.engine import HELD_BACK
from models import RowResult, SyncRun
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, create_sync
from tests.sync.test_engine import MAPPING, Audience, Harness, held_by

EIGHT: Audience = {i: f"m{i}@x" for i in range(1, 9)}


async def row_results(runtime: Runtime, run: SyncRun) -> list[tuple[str | None, str, str, str]]:
    async with runtime.database.session() as session:
        rows = await session.execute(select(RowResult).where(col(RowResult.run_id) == run.id))
        return sorted((r.member_key, r.operation, r.status, r.error) for r in rows.scalars().all())


async def test_retry_failed_only_resends_just_the_refused_rows_still_in_the_audience(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(
        runtime, world, sync_mode="mirror", field_mapping=MAPPING, config={"batch_size": 2}
    )
    h = Harness(runtime, sync, hook_url)
    receiver.script.extend([Scripted(500), Scripted(500)])  # batch (1, 2): out of retries
    receiver.reject_ids = {"4"}  # refused inside a 200
    duplicate = [("7", {"id": 7, "email": "again@x"})]
    first = await h.run(EIGHT, extra=duplicate)
    assert first.status == RunStatus.partial
    assert first.failed["add"] == 3 and first.invalid == 2 and first.succeeded["add"] == 4
    assert {(k, s) for k, _, s, _ in await row_results(runtime, first)} == {
        ("1", "failed"),
        ("2", "failed"),
        ("4", "rejected"),
        ("7", "invalid"),
    }

    receiver.reject_ids = set()
    # Since then: 2 left, 9 joined, 6 changed, and 3 (held) left too.
    now: Audience = {k: v for k, v in EIGHT.items() if k not in (2, 3)} | {9: "m9@x", 6: "new@x"}
    requests = receiver.requests
    retry = await h.run(now, extra=duplicate, retry_failed_only=True)
    assert retry.status == RunStatus.succeeded
    assert retry.query_size == 2 and retry.retried_from_previous == 2  # 1 and 4
    assert retry.planned == {"add": 2, "update": 0, "remove": 0} == retry.succeeded
    assert retry.unchanged == 0 and retry.invalid == 0  # 7 is re-evaluated by normal runs
    assert receiver.requests == requests + 1  # one batch: 1 and 4, nothing else
    assert held_by(receiver) == {k: EIGHT[k] for k in (1, 3, 4, 5, 6, 8)}

    # The last refusing run is still the first one: its rows are now held, nothing to send.
    again = await h.run(now, extra=duplicate, retry_failed_only=True)
    assert again.status == RunStatus.succeeded and again.query_size == 2
    assert again.unchanged == 2 and again.planned == {"add": 0, "update": 0, "remove": 0}
    assert receiver.requests == requests + 1 and again.retried_from_previous == 0

    normal = await h.run(now, extra=duplicate)
    assert normal.succeeded == {"add": 1, "update": 1, "remove": 1}  # 9, 6 and 3
    assert held_by(receiver) == {k: v for k, v in now.items() if k != 7}


async def test_retry_failed_only_with_nothing_refused_succeeds_and_sends_nothing(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(runtime, world, sync_mode="mirror", field_mapping=MAPPING)
    h = Harness(runtime, sync, hook_url)
    await h.run(EIGHT, extra=[(None, {"id": None, "email": "none@x"})])  # invalid only
    requests = receiver.requests
    retry = await h.run({1: "changed@x"}, retry_failed_only=True)
    assert retry.status == RunStatus.succeeded and receiver.requests == requests
    assert (retry.query_size, retry.unchanged, retry.invalid) == (0, 0, 0)
    assert retry.planned == retry.succeeded == {"add": 0, "update": 0, "remove": 0}
    assert held_by(receiver) == EIGHT  # nothing removed though 2..8 left


async def test_retry_failed_only_never_removes(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(runtime, world, sync_mode="mirror", field_mapping=MAPPING)
    h = Harness(runtime, sync, hook_url)
    await h.run(EIGHT)
    receiver.reject_ids = {"2"}  # the removal of 2 is refused
    refused = await h.run({k: v for k, v in EIGHT.items() if k not in (1, 2)})
    assert refused.failed["remove"] == 1 and refused.succeeded["remove"] == 1
    receiver.reject_ids = set()
    retry = await h.run({k: v for k, v in EIGHT.items() if k != 2}, retry_failed_only=True)
    assert retry.query_size == 0 and retry.planned == {"add": 0, "update": 0, "remove": 0}
    assert 2 in held_by(receiver)  # left, but a retry removes nothing
    normal = await h.run({k: v for k, v in EIGHT.items() if k != 2})
    assert normal.succeeded == {"add": 1, "update": 0, "remove": 1}
    assert normal.retried_from_previous == 1  # the refused removal, retried by a normal run
    assert held_by(receiver) == {k: v for k, v in EIGHT.items() if k != 2}


async def test_with_retry_failed_rows_off_a_refused_row_waits_for_a_change_or_a_retry(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(
        runtime,
        world,
        sync_mode="mirror",
        field_mapping=MAPPING,
        config={"retry_failed_rows": False},
    )
    h = Harness(runtime, sync, hook_url)
    receiver.reject_ids = {"2", "3"}
    first = await h.run(EIGHT)
    assert first.failed["add"] == 2
    receiver.reject_ids = set()

    requests = receiver.requests
    held_back = await h.run(EIGHT)  # same payloads: not sent, reported as refused again
    assert receiver.requests == requests and held_back.status == RunStatus.partial
    assert held_back.planned["add"] == 2 == held_back.failed["add"]
    assert held_back.unchanged == 6 and held_back.retried_from_previous == 0
    rows = await row_results(runtime, held_back)
    assert [(k, s) for k, _, s, _ in rows] == [("2", "rejected"), ("3", "rejected")]
    assert all(error == HELD_BACK + f"invalid record {k}" for k, _, _, error in rows)

    changed = {**EIGHT, 3: "fixed@x"}
    second = await h.run(changed)  # 3 changed: sent; 2 still held back (carried forward)
    assert second.succeeded["add"] == 1 and second.failed["add"] == 1
    assert second.retried_from_previous == 1
    assert held_by(receiver) == {k: v for k, v in changed.items() if k != 2}
    assert [(k, e) for k, _, _, e in await row_results(runtime, second)] == [
        ("2", HELD_BACK + "invalid record 2")
    ]

    retry = await h.run(changed, retry_failed_only=True)  # an explicit retry sends it
    assert retry.succeeded["add"] == 1 and retry.query_size == 1
    assert held_by(receiver) == changed
    quiet = await h.run(changed)
    assert quiet.status == RunStatus.succeeded and quiet.unchanged == 8


async def test_a_dry_retry_reports_what_it_would_resend(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    sync = await create_sync(runtime, world, sync_mode="upsert", field_mapping=MAPPING)
    h = Harness(runtime, sync, hook_url)
    receiver.reject_ids = {"5"}
    await h.run(EIGHT)
    receiver.reject_ids = set()
    requests = receiver.requests
    dry = await h.run(EIGHT, retry_failed_only=True, dry_run=True)
    assert dry.planned == {"add": 1, "update": 0, "remove": 0} and dry.query_size == 1
    assert dry.retried_from_previous == 1 and receiver.requests == requests
    real = await h.run(EIGHT, retry_failed_only=True)
    assert real.succeeded["add"] == 1 and held_by(receiver) == EIGHT
