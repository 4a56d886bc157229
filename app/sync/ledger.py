"""What a run writes down: the rows the destination acknowledged (as held state), its counts,
its row results, a progress event per commit, and its end.

A commit records every batch that landed since the last one in one transaction, so the held
state and the counts never disagree; it also tells the engine when the run was cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlmodel import col

from app.destinations.base import Operation, Record
from app.runs import append_event, transition_run
from app.sync.dispatch import Landed
from app.sync.held import AlreadyHeld, Sent, record_digests, record_sent
from app.sync.job import EngineInput, Payload, RunStopped, Tally
from app.sync.outcome import apply_run_outcome
from models import AudienceSync, RowResult, SyncRun
from models.columns import utcnow
from models.enums import RunPhase, RunStatus

#: A row on its way: its record, the fingerprint it is sent with, its identifiers, and the
#: digest of the source line it was made from.
Item = tuple[Record, str, Payload | None, bytes | None]


class Ledger:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], job: EngineInput) -> None:
        self.sessions = sessions
        self.job = job
        self.tally = Tally()
        self.row_results: list[RowResult] = []
        #: Where commits go: the run's own connection while it sends (see `commits_on`).
        self._commits = sessions

    @asynccontextmanager
    async def commits_on(self, connection: AsyncConnection) -> AsyncIterator[None]:
        """Commits go through `connection`: no pool checkout (nor ping) per commit."""
        self._commits = async_sessionmaker(connection, expire_on_commit=False)
        try:
            yield
        finally:
            self._commits = self.sessions

    def row(
        self, key: str | None, operation: str, status: str, reason: str, fp: str | None = None
    ) -> None:
        """A row result, written with the next commit."""
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

    async def record_unsent(self, upserts: list[Sent], removed: list[str]) -> None:
        """Held state changed without sending (remove mode tracks entries and exits)."""
        if self.job.dry_run:
            return
        async with self.sessions() as session:
            await record_sent(
                session, self.job.sync.id, upserts, removed, numeric=self.job.numeric_keys
            )
            await session.commit()

    async def record_digests(self, digests: list[tuple[str, bytes]]) -> None:
        """Held members found unchanged by their fingerprint get their line's digest."""
        if self.job.dry_run or not digests:
            return
        async with self.sessions() as session:
            await record_digests(session, self.job.sync.id, digests)
            await session.commit()

    async def commit(self, landed: list[Landed[Item]]) -> None:
        """The acknowledged rows of every batch that landed become held state in one
        transaction, with the counts, the row results and a progress event."""
        upserts: list[Sent] = []
        added: list[Sent] = []  # the run found them not held
        removed: list[str] = []
        for flight in landed:
            operation, delivery = flight.operation, flight.delivery
            refused = (*delivery.rejected, *delivery.failed)
            held = added if operation is Operation.add else upserts
            if operation is Operation.remove:
                removed.extend(delivery.accepted)
            elif not refused and len(delivery.accepted) == len(flight.items):
                held.extend(
                    (record.key, fp, ids, digest) for record, fp, ids, digest in flight.items
                )
            else:
                sent = {record.key: (fp, ids, digest) for record, fp, ids, digest in flight.items}
                held.extend((key, *sent[key]) for key in delivery.accepted)
            if refused:
                fps = {record.key: fp for record, fp, _, _ in flight.items}
                for status, rows in (("rejected", delivery.rejected), ("failed", delivery.failed)):
                    for key, reason in rows:
                        self.row(key, operation.value, status, reason, fps.get(key))
            self.tally.succeeded[operation.value] += len(delivery.accepted)
            self.tally.failed[operation.value] += len(refused)
        try:
            await self._record(upserts, removed, added)
        except AlreadyHeld:  # the transaction is lost, nothing was recorded
            await self._record([*added, *upserts], removed, [])

    async def _record(self, upserts: list[Sent], removed: list[str], added: list[Sent]) -> None:
        async with self._commits() as session:
            await record_sent(
                session,
                self.job.sync.id,
                upserts,
                removed,
                numeric=self.job.numeric_keys,
                added=added,
            )
            await self.save_progress(session=session)

    async def save_progress(
        self, *, final: bool = False, session: AsyncSession | None = None
    ) -> None:
        """Counts, row results, a progress event and the heartbeat, committed; raises
        `RunStopped` once the run is being cancelled (what was recorded stays recorded)."""
        if session is None:
            async with self._commits() as own:
                await self.save_progress(final=final, session=own)
            return
        session.add_all(self.row_results)
        self.row_results = []
        planned = sum(self.tally.planned.values()) or 1
        done = sum(self.tally.succeeded.values()) + sum(self.tally.failed.values())
        changes = {
            **self.tally.columns(),
            "heartbeat_at": utcnow(),
            "phase": RunPhase.reporting if final else RunPhase.syncing,
            "progress": 1.0 if final else min(done / planned, 0.99),
        }
        status = (
            await session.execute(
                update(SyncRun)
                .where(col(SyncRun.id) == self.job.run_id)
                .values(**changes)
                .returning(col(SyncRun.status))
                .execution_options(synchronize_session=False)
            )
        ).scalar_one()
        event = await append_event(session, self.job.run_id, "progress", self.tally.columns())
        await session.commit()
        if self.job.publish is not None:
            await self.job.publish(event)
        if status == RunStatus.cancelling:
            raise RunStopped(RunStatus.cancelled)

    async def finish(self, status: RunStatus, code: str = "", message: str = "") -> SyncRun:
        """The run's end: its status, counts and error, and the sync's outcome."""
        async with self.sessions() as session:
            session.add_all(self.row_results)
            run = await session.get(SyncRun, self.job.run_id)
            sync = await session.get(AudienceSync, self.job.sync.id)
            assert run is not None and sync is not None
            error = {"code": code, "message": message} if code else None
            apply_run_outcome(sync, run.id, status, error)
            columns = {**self.tally.columns(), "progress": 1.0}
            return await transition_run(
                session, run, status, error=error, publish=self.job.publish, **columns
            )
