"""One run of an audience sync (DESIGN §5): stream → plan → send in batches → commit each
batch only after the destination acknowledged it.

The audience and the held state arrive as two streams in the same key order, so memory
holds a batch, never the audience. Additions and updates go out as the plan finds them;
removals are collected (at most what the removal guard allows) and go out last, so a run
that would remove too much stops before it removes anything.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.destinations.base import Batch, Connector, Operation, Record
from app.destinations.delivery import Delivery, RetryPolicy, deliver
from app.destinations.identifiers import InvalidValue
from app.runs import Publish, append_event, transition_run
from app.sync.held import (
    Sent,
    held_count,
    held_identifiers,
    held_members,
    record_sent,
    sort_key_for,
)
from app.sync.mapping import fingerprint, map_row
from app.sync.outcome import apply_run_outcome
from app.sync.plan import Change, Member, Step, plan_diff
from models import AudienceSync, RowResult, SyncRun
from models.columns import utcnow
from models.enums import RunPhase, RunStatus, SyncMode

DEFAULT_MAX_REMOVAL_RATIO = 0.5
#: Which changes each mode sends (DESIGN §5.2).
SENDS: dict[SyncMode, frozenset[Change]] = {
    SyncMode.add: frozenset({Change.add}),
    SyncMode.remove: frozenset({Change.remove}),
    SyncMode.mirror: frozenset({Change.add, Change.update, Change.remove}),
    SyncMode.upsert: frozenset({Change.add, Change.update}),
}
OPERATIONS = tuple(op.value for op in Operation)
Payload = dict[str, Any]


def _no_identifiers(_: Payload) -> Payload:
    return {}


class RunStopped(Exception):
    """The run ends early: cancelled, or refused by a guard (with an error code)."""

    def __init__(self, status: RunStatus, code: str = "", message: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Tally:
    """The run's counts; `query_size = planned.add + planned.update + unchanged + invalid`."""

    query_size: int = 0
    invalid: int = 0
    unchanged: int = 0
    planned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    succeeded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))

    def columns(self) -> dict[str, Any]:
        return {
            "query_size": self.query_size,
            "invalid": self.invalid,
            "unchanged": self.unchanged,
            "planned": dict(self.planned),
            "succeeded": dict(self.succeeded),
            "failed": dict(self.failed),
        }


@dataclass(frozen=True)
class EngineInput:
    run_id: uuid.UUID
    sync: AudienceSync
    #: (member_key, row) in key order; None keys last.
    members: AsyncIterator[tuple[str | None, dict[str, Any]]]
    numeric_keys: bool
    connector: Connector
    full_resync: bool = False
    dry_run: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    publish: Publish | None = None
    #: The destination's normalisation of a mapped payload; raises `InvalidValue`.
    prepare: Callable[[Payload], Payload] = dict
    #: The identifying part of a prepared payload, kept to remove the member later.
    identify: Callable[[Payload], Payload] = _no_identifiers


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

    async def run(self, run: SyncRun) -> SyncRun:
        """Execute `run` (queued) to its end; returns the finished run."""
        async with self.sessions() as session:
            current = await session.get(SyncRun, run.id)
            assert current is not None
            await transition_run(
                session,
                current,
                RunStatus.running,
                phase=RunPhase.querying,
                publish=self.job.publish,
            )
            self.held = await held_count(session, self.sync.id)
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
        held = held_members(self.engine, self.sync.id, numeric=self.job.numeric_keys)
        sort_key = sort_key_for(self.job.numeric_keys)
        async for step in plan_diff(self._valid_members(), held, sort_key=sort_key):
            await self._take(step, sends=frozenset() if baseline else SENDS[self.mode])
        if self.removals and not self.job.full_resync and self.tally.query_size == 0:
            self._refuse_removals("the audience is empty")
        for start in range(0, len(self.removals), self.batch_size):
            await self._queue_removals(self.removals[start : start + self.batch_size])
        for operation in Operation:
            await self._flush(operation)
        await self._save_progress(final=True)

    async def _valid_members(self) -> AsyncIterator[Member]:
        """Members with a usable key; null and duplicate keys are recorded as invalid."""
        group: list[tuple[str | None, dict[str, Any]]] = []
        async for key, row in self.job.members:
            if group and key != group[0][0]:
                member = self._settle(group)
                if member is not None:
                    yield member
                group = []
            group.append((key, row))
        member = self._settle(group) if group else None
        if member is not None:
            yield member

    def _settle(self, group: list[tuple[str | None, dict[str, Any]]]) -> Member | None:
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
        if change is Change.remove:
            if Change.remove in sends:
                self.removals.append((step.key, step.held_fingerprint or ""))
                if len(self.removals) > self.removal_limit and not self.job.full_resync:
                    self._refuse_removals(f"more than {self.removal_limit:g} would be removed")
            elif self.mode is SyncMode.remove:
                await self._record_silently([], [step.key])  # remove mode tracks exits only
            return
        assert step.member is not None
        if change in sends:
            operation = Operation.add if change is Change.add else Operation.update
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

    def _refuse_removals(self, why: str) -> None:
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

    def _record_row(self, key: str | None, operation: str, status: str, reason: str) -> None:
        self.row_results.append(
            RowResult(
                run_id=self.job.run_id,
                member_key=key,
                operation=operation,
                status=status,
                error=reason[:1000],
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
                self._record_row(key, operation.value, status, reason)
        self.tally.succeeded[operation.value] += len(delivery.accepted)
        self.tally.failed[operation.value] += len(delivery.rejected) + len(delivery.failed)
        async with self.sessions() as session:
            await record_sent(session, self.sync.id, upserts, removed)
            await self._save_progress(session=session)

    async def _save_progress(self, *, final: bool = False, session: Any = None) -> None:
        """Counts, row results, a progress event and the heartbeat; stops if cancelled."""
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
