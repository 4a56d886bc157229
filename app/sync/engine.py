"""One run of an audience sync (DESIGN §5): stream → plan → send in batches → commit what the
destination acknowledged.

The audience and the held state arrive as two streams of batches in the same key order, and
the plan goes a stretch of keys at a time (`app.sync.plan`), so memory holds a few batches,
never the audience. Additions and updates go out as the plan finds them, up to
`concurrency` batches in flight at once; acknowledged batches are committed in groups
(`app.sync.dispatch`), each only after the destination acknowledged it. Removals are
collected (at most what the removal guard allows) and go out last, so a run that would
remove too much stops before it removes anything.

The rows the sync's last refusing run rejected or failed arrive as a third stream in the same
order (`app.sync.refused`): a `retry_failed_only` run keeps just their keys on both sides,
and every run looks its members up there. Cancel and the time limit are checked between
batches; a run that stops waits for its batches in flight, so it has committed everything
the destination acknowledged. What a run writes down is the `Ledger`'s (`app.sync.ledger`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.destinations.base import Batch, Operation, Record
from app.destinations.delivery import Delivery, deliver
from app.runs import transition_run
from app.sync.dispatch import Dispatch, Landed, closing
from app.sync.held import (
    HELD_BATCH,
    Sent,
    fill_member_order,
    held_count,
    held_identifiers,
    held_members,
    sort_key_for,
)
from app.sync.job import EngineInput, RunStopped, Tally
from app.sync.ledger import Item, Ledger
from app.sync.members import Batch as MemberBatch
from app.sync.members import decoded_batches, member_batches
from app.sync.plan import Change, Held, Lines, Members, Stretch, plan_stretches
from app.sync.refused import KeyCursor, Refused, last_refusing_run, only_keys, refused_rows
from app.sync.streams import ReadAhead, closed_by, nothing
from models import SyncRun
from models.enums import RunPhase, RunStatus, SyncMode

__all__ = ["EngineInput", "RunStopped", "SyncEngine", "Tally"]

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


class SyncEngine:
    def __init__(self, engine: AsyncEngine, job: EngineInput) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.job = job
        self.sync = job.sync
        self.mode = SyncMode(self.sync.sync_mode)
        self.ledger = Ledger(self.sessions, job)
        self.tally = self.ledger.tally
        configured = self.sync.config.get("batch_size") or job.connector.default_batch_size
        self.batch_size = min(int(configured), job.connector.max_batch_size)
        self.pending: dict[Operation, list[Item]] = {op: [] for op in Operation}
        self.removals: list[tuple[str, str]] = []
        #: Members held when the run started (None until counted: `_count_held`).
        self.held: int | None = None
        self.removal_limit = 0.0
        self._counting: asyncio.Task[int] | None = None
        self.sort_key = sort_key_for(job.numeric_keys)
        #: Off: a row refused with the payload it would be sent with again is held back.
        self.retry_rows = self.sync.config.get("retry_failed_rows") is not False
        self.refusing_run: uuid.UUID | None = None
        #: The last refusing run's rows, looked up as the plan goes (None: there are none).
        self.previous: KeyCursor | None = None
        self.deadline: float | None = None
        self.dispatch: Dispatch[Item] | None = None
        #: (key, line digest) of held members to give their current line's digest.
        self.new_digests: list[tuple[str, bytes]] = []

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
            await fill_member_order(session, self.sync.id, numeric=self.job.numeric_keys)
            await session.commit()
            self.refusing_run = await last_refusing_run(session, self.sync.id)
        # Counted (a scan of the sync's held members) while the source starts its query.
        self._counting = asyncio.create_task(self._count())
        try:
            await self._sync()
        except RunStopped as stop:
            return await self.ledger.finish(stop.status, stop.code, stop.message)
        finally:
            self._counting.cancel()
            await asyncio.gather(self._counting, return_exceptions=True)
        rows_lost = self.tally.invalid or any(self.tally.failed.values())
        return await self.ledger.finish(RunStatus.partial if rows_lost else RunStatus.succeeded)

    async def _count(self) -> int:
        async with self.sessions() as session:
            return await held_count(session, self.sync.id)

    async def _count_held(self) -> int:
        """The members held when the run started, and the removal guard's limit. Asked for
        before the run changes what is held (at its first stretch), so the count is the
        held state the plan compares with."""
        if self.held is None:
            assert self._counting is not None
            self.held = await self._counting
            ratio = self.sync.config.get("max_removal_ratio", DEFAULT_MAX_REMOVAL_RATIO)
            self.removal_limit = float(ratio) * self.held
        return self.held

    async def _sync(self) -> None:
        baseline = self.mode is SyncMode.remove and await self._count_held() == 0
        sends = frozenset() if baseline else SENDS[self.mode]
        async with self.engine.connect() as connection, self.ledger.commits_on(connection):
            self.dispatch = Dispatch(self.job.concurrency, self._deliver, self._commit)
            await closing(self.dispatch, self._plan_and_send(sends))
            await self.ledger.save_progress(final=True)

    async def _plan_and_send(self, sends: frozenset[Change]) -> None:
        async with AsyncExitStack() as streams:  # a run that stops early closes every stream
            members, held = self._streams(streams)
            plan = closed_by(streams, plan_stretches(members, held, sort_key=self.sort_key))
            async for stretch in plan:
                if self.deadline is not None and time.monotonic() > self.deadline:
                    self._time_out()
                self._dispatch().check()  # cancelled meanwhile: stop planning
                await self._take(stretch, sends=sends)
                # Each stretch is milliseconds of CPU: let the commits and deliveries waiting
                # on the database and the destination go on in between.
                await asyncio.sleep(0)
        await self._count_held()
        await self._flush_digests()
        if self.removals and not self.job.full_resync and self.tally.query_size == 0:
            self._refuse_removals("the audience is empty")
        for operation in (Operation.add, Operation.update):
            await self._flush(operation)
        for start in range(0, len(self.removals), self.batch_size):
            await self._queue_removals(self.removals[start : start + self.batch_size])
        await self._flush(Operation.remove)

    def _dispatch(self) -> Dispatch[Item]:
        assert self.dispatch is not None
        return self.dispatch

    def _streams(
        self, streams: AsyncExitStack
    ) -> tuple[AsyncIterator[Members | Lines], AsyncIterator[Sequence[Held]]]:
        """The audience and the held state, in batches in key order. A retry keeps only the
        keys of the last refusing run on both sides; with none, it considers nothing. Only
        a run that trusts the held state (not a full resync) knows members by their line."""
        members: AsyncIterator[MemberBatch] = closed_by(streams, self.job.members)
        if self.job.retry_failed_only and self.refusing_run is None:
            return nothing(), nothing()
        # Read ahead from now on: the database reads the held state while the source starts.
        held_state = held_members(self.engine, self.sync.id, numeric=self.job.numeric_keys)
        held: AsyncIterator[Sequence[Held]] = closed_by(streams, ReadAhead(held_state))
        digests = self.job.row_digests
        if self.job.retry_failed_only:
            decoded = closed_by(streams, decoded_batches(members))
            members = closed_by(streams, only_keys(decoded, self._refused(streams)))
            held = closed_by(streams, only_keys(held, self._refused(streams)))
            digests = None
        elif self.refusing_run is not None:
            self.previous = self._refused(streams)
        valid = member_batches(
            members,
            self.sync.field_mapping,
            self.job.prepare,
            digests,
            known=not self.job.full_resync,
        )
        return closed_by(streams, valid), held

    def _refused(self, streams: AsyncExitStack) -> KeyCursor:
        assert self.refusing_run is not None
        rows = refused_rows(self.engine, self.refusing_run, numeric=self.job.numeric_keys)
        cursor = KeyCursor(rows, self.sort_key)
        streams.push_async_callback(cursor.aclose)
        return cursor

    async def _take(self, stretch: Stretch, *, sends: frozenset[Change]) -> None:
        """Count, queue or record every member and every exit of one stretch of keys."""
        await self._count_held()
        members = stretch.members
        self.tally.query_size += members.size  # counted when planned: counts reconcile
        self.tally.invalid += len(members.invalid)
        for key, reason in members.invalid:
            self.ledger.row(key, Operation.add.value, "invalid", reason)
        last = stretch.last_key
        refused: dict[str, Refused] = {}
        if self.previous is not None and last is not None:
            refused = await self.previous.upto(last)
        for key, held_fp in stretch.gone:  # before the members: the guard comes first
            await self._take_exit(key, held_fp, refused.get(key), sends)
        fingerprints, held = members.fingerprints, stretch.held
        if self.job.full_resync:
            changed: Sequence[int] = range(len(fingerprints))
        else:
            changed = [
                i for i, (fp, was) in enumerate(zip(fingerprints, held, strict=True)) if fp != was
            ]
        self.tally.unchanged += len(fingerprints) - len(changed) + stretch.unchanged
        if members.digests is not None and len(changed) < len(fingerprints):
            await self._record_digests(stretch, changed)
        if changed:
            adds = [i for i in changed if held[i] is None]
            updates = (
                [i for i in changed if held[i] is not None] if len(adds) < len(changed) else []
            )
            await self._take_changes(members, Change.add, adds, refused, sends)
            await self._take_changes(members, Change.update, updates, refused, sends)
        for operation in (Operation.add, Operation.update):
            while len(self.pending[operation]) >= self.batch_size:
                await self._send(operation, self.batch_size)
                await asyncio.sleep(0)  # as after a stretch: commits and deliveries go on

    async def _record_digests(self, stretch: Stretch, changed: Sequence[int]) -> None:
        """The members found unchanged by their fingerprint, not by their line (the line or
        the recipe changed): held from now on with their line's digest."""
        digests, held = stretch.members.digests, stretch.held_digests
        assert digests is not None and held is not None
        keys, skip = stretch.members.keys, set(changed)
        self.new_digests.extend(
            (keys[i], digest)
            for i, digest in enumerate(digests)
            if i not in skip and digest is not None and digest != held[i]
        )
        if len(self.new_digests) >= HELD_BATCH:
            await self._flush_digests()

    async def _flush_digests(self) -> None:
        digests, self.new_digests = self.new_digests, []
        await self.ledger.record_digests(digests)

    async def _take_changes(
        self,
        members: Members,
        change: Change,
        indexes: list[int],
        refused: dict[str, Refused],
        sends: frozenset[Change],
    ) -> None:
        """Queue the members at `indexes`, all with the same change, if the mode sends it."""
        if not indexes:
            return
        keys, fingerprints, identify = members.keys, members.fingerprints, self.job.identify
        digests = members.digests or [None] * len(keys)
        if change not in sends:
            self.tally.unchanged += len(indexes)
            if self.mode is SyncMode.remove:  # entries are tracked, unsent, for their exit
                payloads = members.payloads_at(indexes)
                tracked: list[Sent] = [
                    (keys[i], fingerprints[i], identify(payload) if identify else None, digests[i])
                    for i, payload in zip(indexes, payloads, strict=True)
                ]
                await self.ledger.record_unsent(tracked, [])
            return
        operation = Operation.add if change is Change.add else Operation.update
        if refused or self.job.retry_failed_only:
            indexes = [
                i
                for i in indexes
                if not self._retried_and_held_back(i, members, operation, refused)
            ]
        self.tally.planned[operation.value] += len(indexes)
        if self.job.dry_run:
            return
        payloads = members.payloads_at(indexes)
        if identify is None:
            items: list[Item] = [
                (Record(keys[i], payload), fingerprints[i], None, digests[i])
                for i, payload in zip(indexes, payloads, strict=True)
            ]
        else:
            items = [
                (Record(keys[i], payload), fingerprints[i], identify(payload) or None, digests[i])
                for i, payload in zip(indexes, payloads, strict=True)
            ]
            if operation is Operation.update:
                items = await self._retire_old_identities(items)
        self.pending[operation].extend(items)

    async def _retire_old_identities(self, items: list[Item]) -> list[Item]:
        """Updates whose identifiers changed (a new email): the vendor would keep the person
        under the identifiers we sent before, and a later exit would remove only the new
        ones. So those are removed first, and the update goes out once that landed. An
        update whose old identity the vendor refused to remove is not sent: it fails, and
        the next run tries again (its held fingerprint is the old one)."""
        async with self.sessions() as session:
            held = await held_identifiers(session, self.sync.id, [r.key for r, _, _, _ in items])
        stale = {
            record.key: held[record.key]
            for record, _, identifiers, _ in items
            if record.key in held and _left_behind(held[record.key], identifiers or {})
        }
        if not stale:
            return items
        refused: dict[str, str] = {}
        retired = [Record(key, {"member_key": key, **ids}) for key, ids in stale.items()]
        for start in range(0, len(retired), self.batch_size):
            chunk = tuple(retired[start : start + self.batch_size])
            batch = Batch(self.sync.id, self.job.run_id, Operation.remove, chunk)
            delivery = await deliver(self.job.connector, batch, self.job.policy)
            refused.update((*delivery.rejected, *delivery.failed))
        kept: list[Item] = []
        for item in items:
            record, fp, _, _ = item
            reason = refused.get(record.key)
            if reason is None:
                kept.append(item)
                continue
            self.ledger.row(
                record.key,
                Operation.update.value,
                "failed",
                f"the identifiers it was sent under before could not be removed: {reason}",
                fp,
            )
            self.tally.failed[Operation.update.value] += 1
        return kept

    def _retried_and_held_back(
        self, index: int, members: Members, operation: Operation, refused: dict[str, Refused]
    ) -> bool:
        """Counts a row the last refusing run refused (or any row of a retry) as retried,
        unless it is held back (then True)."""
        key = members.keys[index]
        previous = refused.get(key)
        if previous is None and not self.job.retry_failed_only:
            return False
        if self._holds_back(key, members.fingerprints[index], operation, previous):
            return True
        self.tally.retried_from_previous += 1
        return False

    async def _take_exit(
        self, key: str, held_fp: str, previous: Refused | None, sends: frozenset[Change]
    ) -> None:
        if self.job.retry_failed_only:
            return  # a retry removes nothing (not even the exits remove mode tracks)
        if Change.remove in sends:
            if previous is not None:
                self.tally.retried_from_previous += 1
            self.removals.append((key, held_fp))
            if len(self.removals) > self.removal_limit and not self.job.full_resync:
                self._refuse_removals(f"more than {self.removal_limit:g} would be removed")
        elif self.mode is SyncMode.remove:
            await self.ledger.record_unsent([], [key])  # remove mode tracks exits only

    def _holds_back(self, key: str, fp: str, operation: Operation, refused: Refused | None) -> bool:
        """With `retry_failed_rows` off, a row the last refusing run refused with this very
        payload is not sent again: it is reported exactly as if it had been refused again
        (recorded with its earlier status and reason, planned and failed), so only the
        sending is saved. A changed payload goes out; refused removals are always retried."""
        if refused is None or self.retry_rows or self.job.full_resync or refused.fingerprint != fp:
            return False
        reason = refused.error if refused.error.startswith(HELD_BACK) else HELD_BACK + refused.error
        self.ledger.row(key, operation.value, refused.status, reason, refused.fingerprint)
        self.tally.planned[operation.value] += 1
        self.tally.failed[operation.value] += 1
        return True

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
        self.tally.planned[Operation.remove.value] += len(removals)
        if self.job.dry_run:
            return
        async with self.sessions() as session:
            identifiers = await held_identifiers(session, self.sync.id, [k for k, _ in removals])
        self.pending[Operation.remove].extend(
            (Record(key, {"member_key": key, **identifiers.get(key, {})}), held_fp, None, None)
            for key, held_fp in removals
        )
        while len(self.pending[Operation.remove]) >= self.batch_size:
            await self._send(Operation.remove, self.batch_size)

    async def _send(self, operation: Operation, size: int) -> None:
        pending = self.pending[operation]
        items, self.pending[operation] = pending[:size], pending[size:]
        await self._dispatch().send(operation, items)

    async def _flush(self, operation: Operation) -> None:
        while self.pending[operation]:
            await self._send(operation, self.batch_size)

    async def _deliver(self, operation: Operation, items: Sequence[Item]) -> Delivery:
        records = tuple(record for record, _, _, _ in items)
        batch = Batch(self.sync.id, self.job.run_id, operation, records)
        return await deliver(self.job.connector, batch, self.job.policy)

    async def _commit(self, landed: list[Landed[Item]]) -> None:
        await self.ledger.commit(landed)
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._time_out()


def _left_behind(before: dict[str, object], now: dict[str, object]) -> bool:
    """Whether an identifier the member was sent under is not among its identifiers now."""
    return any(now.get(field) != value for field, value in before.items())
