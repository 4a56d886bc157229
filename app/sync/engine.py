"""One run of an audience sync (DESIGN §5): stream → plan → send in batches → commit each
batch only after the destination acknowledged it.

The audience and the held state arrive as two streams in the same key order, so memory
holds a batch, never the audience. Additions and updates go out as the plan finds them;
removals are collected (at most what the removal guard allows) and go out last, so a run
that would remove too much stops before it removes anything.

The rows the sync's last refusing run rejected or failed arrive as a third stream in the same
order (`app.sync.refused`): a `retry_failed_only` run keeps just their keys on both sides,
and every run looks its steps up there. Cancel and the time limit are checked between
batches, so a run that stops has committed everything the destination acknowledged.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.destinations.base import Batch, Operation, Record
from app.destinations.delivery import Delivery, deliver
from app.destinations.identifiers import InvalidValue
from app.runs import append_event, transition_run
from app.sync.held import (
    Sent,
    held_count,
    held_identifiers,
    held_members,
    record_sent,
    sort_key_for,
)
from app.sync.job import EngineInput, Payload, RunStopped, Tally
from app.sync.mapping import fingerprint, map_row
from app.sync.outcome import apply_run_outcome
from app.sync.plan import Change, Member, Step, plan_diff
from app.sync.refused import KeyCursor, Refused, last_refusing_run, only_keys, refused_rows
from models import AudienceSync, RowResult, SyncRun
from models.columns import utcnow
from models.enums import RunPhase, RunStatus, SyncMode

__all__ = ["EngineInput", "RunStopped", "SyncEngine", "Tally"]

log = logging.getLogger("signalsmith.sync")
DEFAULT_MAX_REMOVAL_RATIO = 0.5
#: Which changes each mode sends (DESIGN §5.2).
SENDS: dict[SyncMode, frozenset[Change]] = {
    SyncMode.add: frozenset({Change.add}),
    SyncMode.remove: frozenset({Change.remove}),
    SyncMode.mirror: frozenset({Change.add, Change.update, Change.remove}),
    SyncMode.upsert: frozenset({Change.add, Change.update}),
}
#: The reason of a row held back because `config.retry_failed_rows` is off.
HELD_BACK = "not retried (config.retry_failed_rows is off): "
Raw = tuple[str | None, dict[str, Any]]


async def _nothing() -> AsyncIterator[Any]:
    return
    yield


class SyncEngine:
    def __init__(self, engine: AsyncEngine, job: EngineInput) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.job = job
        self.sync = job.sync
        self.mode = SyncMode(self.sync.sync_mode)
        self.tally = Tally()
        configured = self.sync.config.get("batch_size") or job.connector.default_batch_size
        self.batch_size = min(int(configured), job.connector.max_batch_size)
        self.pending: dict[Operation, list[tuple[Record, str]]] = {op: [] for op in Operation}
        self.identified: dict[str, Payload] = {}
        self.removals: list[tuple[str, str]] = []
        self.row_results: list[RowResult] = []
        self.held = 0
        self.removal_limit = 0.0
        self.sort_key = sort_key_for(job.numeric_keys)
        #: Off: a row refused with the payload it would be sent with again is held back.
        self.retry_rows = self.sync.config.get("retry_failed_rows") is not False
        self.refusing_run: uuid.UUID | None = None
        #: The last refusing run's rows, looked up as the plan goes (None: there are none).
        self.previous: KeyCursor | None = None
        self.deadline: float | None = None

    async def run(self, run: SyncRun) -> SyncRun:
        """Execute `run` to its end (claiming it first if it is still queued); returns the
        finished run."""
        if self.job.timeout is not None:
            self.deadline = time.monotonic() + self.job.timeout
        async with self.sessions() as session:
            current = await session.get(SyncRun, run.id)
            assert current is not None
            if current.status == RunStatus.queued:
                await transition_run(
                    session,
                    current,
                    RunStatus.running,
                    phase=RunPhase.querying,
                    publish=self.job.publish,
                )
            self.held = await held_count(session, self.sync.id)
            self.refusing_run = await last_refusing_run(session, self.sync.id)
        ratio = self.sync.config.get("max_removal_ratio", DEFAULT_MAX_REMOVAL_RATIO)
        self.removal_limit = float(ratio) * self.held
        try:
            await self._sync()
        except RunStopped as stop:
            return await self._finish(stop.status, stop.code, stop.message)
        rows_lost = self.tally.invalid or any(self.tally.failed.values())
        return await self._finish(RunStatus.partial if rows_lost else RunStatus.succeeded)

    async def _sync(self) -> None:
        baseline = self.mode is SyncMode.remove and self.held == 0
        sends = frozenset() if baseline else SENDS[self.mode]
        async with AsyncExitStack() as streams:  # a run that stops early closes every stream
            members, held = self._streams(streams)
            plan = _closed_by(streams, plan_diff(members, held, sort_key=self.sort_key))
            async for step in plan:
                await self._take(step, sends=sends)
        if self.removals and not self.job.full_resync and self.tally.query_size == 0:
            self._refuse_removals("the audience is empty")
        for start in range(0, len(self.removals), self.batch_size):
            await self._queue_removals(self.removals[start : start + self.batch_size])
        for operation in Operation:
            await self._flush(operation)
        await self._save_progress(final=True)

    def _streams(
        self, streams: AsyncExitStack
    ) -> tuple[AsyncIterator[Member], AsyncIterator[tuple[str, str]]]:
        """The audience (valid members) and the held state, in key order. A retry keeps only
        the keys of the last refusing run on both sides; with none, it considers nothing."""
        members: AsyncIterator[Raw] = _closed_by(streams, self.job.members)
        held: AsyncIterator[tuple[str, str]] = _closed_by(
            streams, held_members(self.engine, self.sync.id, numeric=self.job.numeric_keys)
        )
        if self.job.retry_failed_only:
            if self.refusing_run is None:
                return _nothing(), _nothing()
            members = _closed_by(streams, only_keys(members, self._refused(streams)))
            held = _closed_by(streams, only_keys(held, self._refused(streams)))
        elif self.refusing_run is not None:
            self.previous = self._refused(streams)
        return _closed_by(streams, self._valid_members(members)), held

    def _refused(self, streams: AsyncExitStack) -> KeyCursor:
        assert self.refusing_run is not None
        rows = refused_rows(self.engine, self.refusing_run, numeric=self.job.numeric_keys)
        cursor = KeyCursor(rows, self.sort_key)
        streams.push_async_callback(cursor.aclose)
        return cursor

    async def _valid_members(self, members: AsyncIterator[Raw]) -> AsyncIterator[Member]:
        """Members with a usable key; null and duplicate keys are recorded as invalid."""
        group: list[Raw] = []
        async for key, row in members:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._time_out()
            if group and key != group[0][0]:
                member = self._settle(group)
                if member is not None:
                    yield member
                group = []
            group.append((key, row))
        member = self._settle(group) if group else None
        if member is not None:
            yield member

    def _settle(self, group: list[Raw]) -> Member | None:
        key, row = group[0]
        self.tally.query_size += len(group)  # counted when planned, so counts always reconcile
        if key is None or len(group) > 1:
            reason = "null key" if key is None else "duplicate key"
            for _ in group:
                self._record_row(key, Operation.add.value, "invalid", reason)
            self.tally.invalid += len(group)
            return None
        try:
            payload = self.job.prepare(map_row(row, self.sync.field_mapping))
        except InvalidValue as exc:
            self._record_row(key, Operation.add.value, "invalid", str(exc))
            self.tally.invalid += 1
            return None
        return Member(key, payload, fingerprint(payload))

    async def _take(self, step: Step, *, sends: frozenset[Change]) -> None:
        change = step.change
        if change is Change.unchanged and self.job.full_resync:
            change = Change.update
        if change is Change.remove and self.job.retry_failed_only:
            return  # a retry removes nothing (not even the exits remove mode tracks)
        refused = await self.previous.find(step.key) if self.previous is not None else None
        if change is Change.remove:
            if Change.remove in sends:
                self._count_retry(refused)
                self.removals.append((step.key, step.held_fingerprint or ""))
                if len(self.removals) > self.removal_limit and not self.job.full_resync:
                    self._refuse_removals(f"more than {self.removal_limit:g} would be removed")
            elif self.mode is SyncMode.remove:
                await self._record_silently([], [step.key])  # remove mode tracks exits only
            return
        assert step.member is not None
        if change in sends:
            operation = Operation.add if change is Change.add else Operation.update
            if self._holds_back(step, operation, refused):
                return
            self._count_retry(refused)
            identifiers = self.job.identify(step.member.payload)
            if identifiers:
                self.identified[step.key] = identifiers
            await self._queue(
                operation, Record(step.key, step.member.payload), step.member.fingerprint
            )
            return
        self.tally.unchanged += 1
        if change is not Change.unchanged and self.mode is SyncMode.remove:
            # Remove mode: entries are tracked (without sending) so their exit can be sent.
            identifiers = self.job.identify(step.member.payload)
            await self._record_silently([(step.key, step.member.fingerprint, identifiers)], [])

    def _holds_back(self, step: Step, operation: Operation, refused: Refused | None) -> bool:
        """With `retry_failed_rows` off, a row the last refusing run refused with this very
        payload is not sent again: it is reported exactly as if it had been refused again
        (recorded with its earlier status and reason, planned and failed), so only the
        sending is saved. A changed payload goes out; refused removals are always retried."""
        assert step.member is not None
        if (
            refused is None
            or self.retry_rows
            or self.job.full_resync
            or refused.fingerprint != step.member.fingerprint
        ):
            return False
        reason = refused.error if refused.error.startswith(HELD_BACK) else HELD_BACK + refused.error
        self._record_row(step.key, operation.value, refused.status, reason, refused.fingerprint)
        self.tally.planned[operation.value] += 1
        self.tally.failed[operation.value] += 1
        return True

    def _count_retry(self, refused: Refused | None) -> None:
        if refused is not None or self.job.retry_failed_only:
            self.tally.retried_from_previous += 1

    def _time_out(self) -> NoReturn:
        raise RunStopped(
            RunStatus.failed,
            "timeout",
            f"the run took longer than {self.job.timeout:g} s and stopped; the rows the "
            "destination acknowledged are recorded and the next run continues from there",
        )

    def _refuse_removals(self, why: str) -> NoReturn:
        raise RunStopped(
            RunStatus.failed,
            "removal_guard",
            f"removal guard: {why} of {self.held} held members; nothing was removed. "
            "Trigger a full resync to proceed.",
        )

    async def _queue_removals(self, removals: list[tuple[str, str]]) -> None:
        """What exits is no longer in the audience: its record carries its key and the
        identifiers it was sent under (a webhook member has none: `{"member_key": key}`)."""
        if self.job.dry_run:
            identifiers: dict[str, Payload] = {}
        else:
            async with self.sessions() as session:
                identifiers = await held_identifiers(
                    session, self.sync.id, [k for k, _ in removals]
                )
        for key, held_fp in removals:
            fields = {"member_key": key, **identifiers.get(key, {})}
            await self._queue(Operation.remove, Record(key, fields), held_fp)

    async def _record_silently(self, upserts: list[Sent], removed: list[str]) -> None:
        if self.job.dry_run:
            return
        async with self.sessions() as session:
            await record_sent(session, self.sync.id, upserts, removed)
            await session.commit()

    def _record_row(
        self, key: str | None, operation: str, status: str, reason: str, fp: str | None = None
    ) -> None:
        self.row_results.append(
            RowResult(
                run_id=self.job.run_id,
                member_key=key,
                operation=operation,
                status=status,
                error=reason[:1000],
                fingerprint=fp,
            )
        )

    async def _queue(self, operation: Operation, record: Record, fp: str) -> None:
        self.tally.planned[operation.value] += 1
        if self.job.dry_run:
            return
        self.pending[operation].append((record, fp))
        if len(self.pending[operation]) >= self.batch_size:
            await self._flush(operation)

    async def _flush(self, operation: Operation) -> None:
        items, self.pending[operation] = self.pending[operation], []
        if not items:
            return
        batch = Batch(self.sync.id, self.job.run_id, operation, tuple(r for r, _ in items))
        delivery = await deliver(self.job.connector, batch, self.job.policy)
        await self._commit_batch(operation, delivery, {r.key: fp for r, fp in items})

    async def _commit_batch(
        self, operation: Operation, delivery: Delivery, fingerprints: dict[str, str]
    ) -> None:
        """The acknowledged rows become held state in the same transaction as the counts."""
        if operation is Operation.remove:
            upserts, removed = [], list(delivery.accepted)
        else:
            upserts = [
                (k, fingerprints[k], self.identified.pop(k, None)) for k in delivery.accepted
            ]
            removed = []
            for key, _ in (*delivery.rejected, *delivery.failed):
                self.identified.pop(key, None)
        for status, rows in (("rejected", delivery.rejected), ("failed", delivery.failed)):
            for key, reason in rows:
                self._record_row(key, operation.value, status, reason, fingerprints.get(key))
        self.tally.succeeded[operation.value] += len(delivery.accepted)
        self.tally.failed[operation.value] += len(delivery.rejected) + len(delivery.failed)
        async with self.sessions() as session:
            await record_sent(session, self.sync.id, upserts, removed)
            await self._save_progress(session=session)

    async def _save_progress(self, *, final: bool = False, session: Any = None) -> None:
        """Counts, row results, a progress event and the heartbeat; stops if cancelled or
        past the deadline (between batches: what was acknowledged is committed)."""
        if session is None:
            async with self.sessions() as own:
                await self._save_progress(final=final, session=own)
            return
        session.add_all(self.row_results)
        self.row_results = []
        run = await session.get(SyncRun, self.job.run_id)
        assert run is not None
        for key, value in self.tally.columns().items():
            setattr(run, key, value)
        run.heartbeat_at = utcnow()
        run.phase = RunPhase.reporting if final else RunPhase.syncing
        planned = sum(self.tally.planned.values()) or 1
        done = sum(self.tally.succeeded.values()) + sum(self.tally.failed.values())
        run.progress = 1.0 if final else min(done / planned, 0.99)
        event = await append_event(session, self.job.run_id, "progress", self.tally.columns())
        await session.commit()
        if self.job.publish is not None:
            await self.job.publish(event)
        if run.status == RunStatus.cancelling:
            raise RunStopped(RunStatus.cancelled)
        if not final and self.deadline is not None and time.monotonic() > self.deadline:
            self._time_out()

    async def _finish(self, status: RunStatus, code: str = "", message: str = "") -> SyncRun:
        async with self.sessions() as session:
            session.add_all(self.row_results)
            run = await session.get(SyncRun, self.job.run_id)
            sync = await session.get(AudienceSync, self.sync.id)
            assert run is not None and sync is not None
            error = {"code": code, "message": message} if code else None
            apply_run_outcome(sync, run.id, status, error)
            columns = {**self.tally.columns(), "progress": 1.0}
            return await transition_run(
                session, run, status, error=error, publish=self.job.publish, **columns
            )


def _closed_by(streams: AsyncExitStack, stream: Any) -> Any:
    """`stream`, closed (when it can be) as `streams` exits: source cursors and database
    connections are released even when the run stops before reading them to the end. A
    stream that fails to close is logged, never put in place of why the run stopped."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:

        async def close() -> None:
            try:
                await aclose()
            except Exception:
                log.warning("could not close a stream of the run", exc_info=True)

        streams.push_async_callback(close)
    return stream
