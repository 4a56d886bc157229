"""The engine end to end into a real webhook receiver: every mode over a scripted series of
membership changes, counts that reconcile, invalid rows, the removal guard, dry runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from app.destinations.address_guard import allow_all
from app.destinations.delivery import RetryPolicy
from app.destinations.webhook import WebhookConnector
from app.runtime import Runtime
from app.sources.membership import LineBatch
from app.sync import ledger
from app.sync.engine import EngineInput, SyncEngine
from app.sync.held import AlreadyHeld, record_sent
from app.sync.row_digest import RowDigests, recipe
from models import AudienceSync, RowResult, SyncedMember, SyncRun
from models.enums import RunStatus
from tests.destinations.receiver import Receiver
from tests.factories import World, create_sync

MAPPING = [
    {"source_column": "id", "destination_field": "id"},
    {"source_column": "email", "destination_field": "email"},
]
Audience = dict[int, str]
T = TypeVar("T")


async def stream(
    audience: Audience,
    extra: list[tuple[str | None, dict[str, Any]]] = [],  # noqa: B006
    batch: int = 2,
    lines: bool = False,
) -> AsyncIterator[list[tuple[str | None, dict[str, Any]]] | LineBatch]:
    """The membership stream's batches (small: members of one key may span two batches);
    with `lines`, as batches of lines of text, as PostgreSQL's COPY gives them."""
    rows = sorted(
        [(str(k), {"id": k, "email": v}) for k, v in audience.items()] + extra,
        key=lambda item: (item[0] is None, int(item[0] or 0)),
    )
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        if not lines:
            yield chunk
            continue
        yield LineBatch(
            [key for key, _ in chunk],
            [f"{row['id']}\t{row['email']}".encode() for _, row in chunk],
            "test",
            lambda positions, chunk=chunk: [chunk[i] for i in positions],  # type: ignore[misc]
        )


async def hooked(
    batches: AsyncIterator[T], before: Callable[[int], Awaitable[None]] | None
) -> AsyncIterator[T]:
    """`batches`, awaiting `before(i)` before the engine gets batch i."""
    index = 0
    async for batch in batches:
        if before is not None:
            await before(index)
        index += 1
        yield batch


class Harness:
    #: Whether the membership stream gives batches of lines (known by their digests).
    lines = False

    def __init__(
        self,
        runtime: Runtime,
        sync: AudienceSync,
        url: str,
        attempts: int = 2,
        concurrency: int = 1,
    ) -> None:
        self.runtime, self.sync, self.url, self.attempts = runtime, sync, url, attempts
        self.concurrency = concurrency

    async def run(
        self,
        audience: Audience,
        *,
        extra: list[Any] | None = None,
        full_resync: bool = False,
        dry_run: bool = False,
        retry_failed_only: bool = False,
        time_limit: float | None = None,
        before_batch: Callable[[int], Awaitable[None]] | None = None,
    ) -> SyncRun:
        async with self.runtime.database.session() as session:
            run = SyncRun(
                sync_id=self.sync.id,
                workspace_id=self.sync.workspace_id,
                full_resync=full_resync,
                dry_run=dry_run,
                retry_failed_only=retry_failed_only,
            )
            session.add(run)
            await session.commit()
        connector = WebhookConnector({"url": self.url}, policy=allow_all)
        try:
            job = EngineInput(
                run_id=run.id,
                sync=self.sync,
                members=hooked(stream(audience, extra or [], lines=self.lines), before_batch),
                numeric_keys=True,
                connector=connector,
                full_resync=full_resync,
                dry_run=dry_run,
                retry_failed_only=retry_failed_only,
                timeout=time_limit,
                policy=RetryPolicy(attempts=self.attempts, initial_delay=0.01),
                concurrency=self.concurrency,
                row_digests=RowDigests(recipe(self.sync.field_mapping, "webhook", {})),
            )
            finished = await SyncEngine(self.runtime.database.engine, job).run(run)
        finally:
            await connector.close()
        assert finished.query_size == (
            finished.planned["add"]
            + finished.planned["update"]
            + finished.unchanged
            + finished.invalid
        )
        return finished


async def harness(runtime: Runtime, world: World, mode: str, url: str) -> Harness:
    sync = await create_sync(runtime, world, sync_mode=mode, field_mapping=MAPPING)
    return Harness(runtime, sync, url)


def held_by(receiver: Receiver) -> Audience:
    return {int(k): v["email"] for k, v in receiver.members.items()}


def counts(run: SyncRun) -> tuple[dict[str, int], int]:
    return run.succeeded, run.unchanged


@pytest.fixture(autouse=True, params=["rows", "lines"])
def batch_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with the stream's batches as rows, and as lines of text (known
    by their digests, decoded only as far as the plan asks)."""
    monkeypatch.setattr(Harness, "lines", request.param == "lines")
    return str(request.param)


async def held_digests(runtime: Runtime, sync_id: Any) -> dict[str, bytes | None]:
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(col(SyncedMember.member_key), col(SyncedMember.row_digest)).where(
                col(SyncedMember.sync_id) == sync_id
            )
        )
        return {key: digest for key, digest in rows}


START: Audience = {1: "a@x", 2: "b@x", 3: "c@x"}
CHANGED: Audience = {2: "b@x", 3: "c2@x", 4: "d@x"}  # 1 exits, 3 changes, 4 enters
REENTER: Audience = {**CHANGED, 1: "a@x"}


async def test_mirror_keeps_the_destination_equal_to_the_audience(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    first = await h.run(START)
    assert first.status == RunStatus.succeeded and held_by(receiver) == START
    second = await h.run(CHANGED)
    assert held_by(receiver) == CHANGED
    assert second.succeeded == {"add": 1, "update": 1, "remove": 1} and second.unchanged == 1
    third = await h.run(REENTER)
    assert held_by(receiver) == REENTER and third.succeeded == {"add": 1, "update": 0, "remove": 0}
    quiet = await h.run(REENTER)
    assert quiet.planned == {"add": 0, "update": 0, "remove": 0} and quiet.unchanged == 4


async def test_a_member_held_after_the_run_read_the_held_state_is_recorded_all_the_same(
    runtime: Runtime,
    world: World,
    receiver: Receiver,
    hook_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Something else holds a member the run found not held (PostgreSQL's COPY of the run's
    adds then conflicts): the commit is recorded again with it as an update of what was
    held, the run succeeds and holds exactly what it sent."""
    h = await harness(runtime, world, "mirror", hook_url)
    conflicts: list[AlreadyHeld] = []

    async def recording(*args: Any, **kwargs: Any) -> None:
        try:
            await record_sent(*args, **kwargs)
        except AlreadyHeld as conflict:
            conflicts.append(conflict)
            raise

    async def intrude(index: int) -> None:
        # Member 5 comes in the third batch of two: the held state was read for the first
        # (and, with lines, the batch after it is read ahead).
        if index == 2:
            async with runtime.database.session() as session:
                await record_sent(
                    session, h.sync.id, [("5", "f" * 64, None, None)], [], numeric=True
                )
                await session.commit()

    monkeypatch.setattr(ledger, "record_sent", recording)
    audience = {k: f"{k}@x" for k in range(1, 7)}
    run = await h.run(audience, before_batch=intrude)
    assert run.status == RunStatus.succeeded and held_by(receiver) == audience
    assert run.succeeded == {"add": 6, "update": 0, "remove": 0}
    postgres = runtime.database.engine.dialect.name == "postgresql"
    assert len(conflicts) == (1 if postgres else 0)
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(col(SyncedMember.member_key), col(SyncedMember.fingerprint)).where(
                col(SyncedMember.sync_id) == h.sync.id
            )
        )
        held = dict(rows.all())
    assert sorted(held, key=int) == [str(k) for k in audience] and held["5"] != "f" * 64
    rerun = await h.run(audience)
    assert rerun.planned == {"add": 0, "update": 0, "remove": 0} and rerun.unchanged == 6


async def test_mirror_removes_only_what_it_sent(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    receiver.members["99"] = {"id": 99, "email": "from-elsewhere@x"}
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(START)
    await h.run({2: "b@x", 3: "c@x"})
    assert held_by(receiver) == {2: "b@x", 3: "c@x", 99: "from-elsewhere@x"}


async def test_add_sends_only_additions(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "add", hook_url)
    await h.run(START)
    second = await h.run(CHANGED)
    assert held_by(receiver) == {**START, 4: "d@x"}
    assert second.succeeded == {"add": 1, "update": 0, "remove": 0} and second.unchanged == 2


async def test_upsert_sends_additions_and_updates(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "upsert", hook_url)
    await h.run(START)
    second = await h.run(CHANGED)
    assert held_by(receiver) == {1: "a@x", **CHANGED}
    assert second.succeeded == {"add": 1, "update": 1, "remove": 0}


async def test_remove_records_a_baseline_then_sends_exits(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    receiver.members.update({str(k): {"id": k, "email": v} for k, v in START.items()})
    h = await harness(runtime, world, "remove", hook_url)
    baseline = await h.run(START)
    assert receiver.requests == 0 and baseline.planned == {"add": 0, "update": 0, "remove": 0}
    second = await h.run(CHANGED)  # 1 exits (removed); 4 enters (tracked, not sent)
    assert second.succeeded == {"add": 0, "update": 0, "remove": 1}
    assert held_by(receiver) == {2: "b@x", 3: "c@x"}
    third = await h.run({2: "b@x", 3: "c2@x"})  # 4 exits: sent, though never added by us
    assert third.succeeded["remove"] == 1


async def test_null_and_duplicate_keys_are_invalid_not_sent(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    extra = [("2", {"id": 2, "email": "dup@x"}), (None, {"id": None, "email": "none@x"})]
    run = await h.run(START, extra=extra)
    assert run.status == RunStatus.partial and run.invalid == 3 and run.query_size == 5
    assert held_by(receiver) == {1: "a@x", 3: "c@x"}
    async with runtime.database.session() as session:
        rows = (
            (await session.execute(select(RowResult).where(RowResult.run_id == run.id)))
            .scalars()
            .all()
        )
    assert sorted((r.member_key or "", r.error) for r in rows) == [
        ("", "null key"),
        ("2", "duplicate key"),
        ("2", "duplicate key"),
    ]


async def test_rejected_rows_are_retried_next_run(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    receiver.reject_ids = {"2"}
    h = await harness(runtime, world, "mirror", hook_url)
    first = await h.run(START)
    assert first.status == RunStatus.partial and first.failed["add"] == 1
    assert first.retried_from_previous == 0
    receiver.reject_ids = set()
    second = await h.run(START)
    assert second.succeeded["add"] == 1 and held_by(receiver) == START
    assert second.retried_from_previous == 1


async def test_removal_guard_stops_before_removing(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(START)
    stopped = await h.run({})
    assert stopped.status == RunStatus.failed and stopped.error is not None
    assert stopped.error["code"] == "removal_guard" and held_by(receiver) == START
    forced = await h.run({}, full_resync=True)
    assert forced.status == RunStatus.succeeded and held_by(receiver) == {}


async def test_dry_run_reports_the_plan_and_sends_nothing(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(START)
    requests = receiver.requests
    plan = await h.run(CHANGED, dry_run=True)
    assert plan.planned == {"add": 1, "update": 1, "remove": 1}
    assert receiver.requests == requests and held_by(receiver) == START
    real = await h.run(CHANGED)
    assert real.planned == plan.planned  # the dry run changed no state


async def test_held_members_keep_their_line_digest_and_a_rerun_knows_them_by_it(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(START)
    digests = RowDigests(recipe(MAPPING, "webhook", {}))
    expected = {
        str(k): digests("test", [f"{k}\t{v}".encode()])[0] if h.lines else None
        for k, v in START.items()
    }
    assert await held_digests(runtime, h.sync.id) == expected
    # A stale digest (an older recipe, say): the member is fingerprinted, found unchanged,
    # and given its line's digest again; one that changed is sent.
    async with runtime.database.session() as session:
        await session.execute(
            update(SyncedMember)
            .where(col(SyncedMember.sync_id) == h.sync.id)
            .values(row_digest=b"stale")
        )
        await session.commit()
    rerun = await h.run({**START, 3: "c3@x"})
    assert rerun.unchanged == 2 and rerun.succeeded == {"add": 0, "update": 1, "remove": 0}
    again = await held_digests(runtime, h.sync.id)
    if h.lines:
        assert again == {**expected, "3": digests("test", [b"3\tc3@x"])[0]}
    else:  # without lines: the unchanged keep what they had, the member sent has none
        assert again == {**dict.fromkeys(expected, b"stale"), "3": None}
    quiet = await h.run({**START, 3: "c3@x"})
    assert quiet.unchanged == 3 and sum(quiet.planned.values()) == 0


async def test_a_new_field_mapping_resends_every_member_with_its_new_payload(
    runtime: Runtime, world: World, receiver: Receiver, hook_url: str
) -> None:
    h = await harness(runtime, world, "mirror", hook_url)
    await h.run(START)
    async with runtime.database.session() as session:
        sync = await session.get(AudienceSync, h.sync.id)
        assert sync is not None
        sync.field_mapping = [*MAPPING, {"source_column": "email", "destination_field": "alias"}]
        session.add(sync)
        await session.commit()
        await session.refresh(sync)
    h.sync = sync
    run = await h.run(START)
    assert run.succeeded == {"add": 0, "update": 3, "remove": 0} and run.unchanged == 0
    assert {k: v["alias"] for k, v in receiver.members.items()} == {
        str(k): v for k, v in START.items()
    }
    quiet = await h.run(START)
    assert quiet.unchanged == 3 and sum(quiet.planned.values()) == 0
