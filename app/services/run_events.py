"""Following runs live: replay, then tail (STYLE; DESIGN §3.3, §4).

Both functions authorise and look the objects up on the caller's session at once (so a
refusal is an ordinary error before anything streams), then return a stream that lives
longer than that session: it subscribes to the bus *before* reading the table, reads on
short sessions of its own, and unsubscribes in `finally` however it ends.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Callable

from sqlmodel import col, select

from app.context import ServiceContext
from app.db import Database
from app.events import RunEvent, RunEventBus
from app.services.lookup import authorize
from app.services.runs import MAX_EVENTS, get_sync_run
from models import SyncRun, SyncRunEvent


async def follow_run_events(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    after: int = 0,
    hand_over: Callable[[RunEvent], bool] | None = None,
) -> AsyncGenerator[RunEvent, None]:
    """The run's events with `seq > after` in order, with no gap and no duplicate: stored
    ones first, then live ones; ends after the terminal status event.

    A live event that skips sequence numbers (a lost or coalesced message) is preceded by
    the missing ones from the table, and a bus quiet for `events_quiet_seconds` makes the
    stream re-read the table, so a lost message never loses the final state.

    `hand_over` lets a transport deliver live events itself, without waking the stream's
    consumer for each (issue 5: one task sends an event to every subscriber): while the
    stream waits for its next live event, that event is offered to `hand_over` first, and
    one it takes (returns True) counts as delivered and is not yielded (after the terminal
    event, the stream ends). Only the event right after the last one delivered is offered,
    and nothing while the consumer still handles an earlier event.
    """
    await get_sync_run(ctx, workspace_id=workspace_id, run_id=run_id)
    return _follow(
        ctx.events,
        ctx.database,
        workspace_id,
        run_id,
        _Position(max(after, 0), hand_over),
        ctx.settings.events_quiet_seconds,
    )


class _Position:
    """How far a follower has delivered (`last`), by yielding or by handing over."""

    __slots__ = ("hand_over", "last")

    def __init__(self, last: int, hand_over: Callable[[RunEvent], bool] | None) -> None:
        self.last = last
        self.hand_over = hand_over

    def offer(self, event: RunEvent) -> bool:
        """Whether `event` needs nothing more from the follower: already delivered, or the
        next one and handed over now. The terminal event, once handed over, still wakes
        the follower, which then ends."""
        if event.seq <= self.last:
            return not event.is_final
        if event.seq != self.last + 1 or self.hand_over is None:
            return False
        if not self.hand_over(event):
            return False
        self.last = event.seq
        return not event.is_final


async def _follow(
    bus: RunEventBus,
    database: Database,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    position: _Position,
    quiet: float,
) -> AsyncGenerator[RunEvent, None]:
    # Every event is wanted: a coalesced one would only be read back from the table.
    subscription = await bus.subscribe(run_id=run_id, coalesce=False)
    if position.hand_over is not None:
        subscription.hand_over = position.offer
    try:
        while True:
            while True:
                stored = await _stored(database, workspace_id, run_id, position.last)
                for event in stored:
                    position.last = event.seq
                    yield event
                    if event.is_final:
                        return
                if len(stored) < MAX_EVENTS:
                    break
            _quiet_reads.record(run_id, position.last)
            while True:
                live = await subscription.get(within=quiet)
                if live is None and not subscription.closed:
                    if _quiet_reads.seen_lately(run_id, position.last, quiet):
                        continue  # another follower of the run just read the table
                    break  # quiet: the table has what a lost message missed
                if live is None or live.seq > position.last + 1:
                    break  # closed, or a gap: the table has what is missing
                if live.seq <= position.last:
                    if live.is_final:
                        return  # handed over: the stream ends here
                    continue  # already sent (replayed, handed over, or delivered twice)
                position.last = live.seq
                yield live
                if live.is_final:
                    return
            if subscription.closed:
                # The bus shut down (the process is stopping): a last read, then end.
                for event in await _stored(database, workspace_id, run_id, position.last):
                    yield event
                return
    finally:
        subscription.close()


class QuietReads:
    """When this process's followers last read each run's table, and up to which `seq`.

    A quiet follower re-reads the table in case a message was lost; with many followers of
    one run (1000 sockets on one run: 200 queries a second), one read per run per quiet
    period is enough: a follower skips its own when another found nothing after its cursor
    less than `quiet` seconds ago. A lost message is then found within two quiet periods.
    """

    LIMIT = 4096

    def __init__(self) -> None:
        self._reads: dict[uuid.UUID, tuple[float, int]] = {}

    def record(self, run_id: uuid.UUID, seq: int) -> None:
        now = time.monotonic()
        if len(self._reads) >= self.LIMIT and run_id not in self._reads:
            oldest = min(self._reads, key=lambda run: self._reads[run][0])
            del self._reads[oldest]
        self._reads[run_id] = (now, seq)

    def seen_lately(self, run_id: uuid.UUID, seq: int, quiet: float) -> bool:
        """Whether a read of the run's table less than `quiet` seconds ago found nothing
        after `seq`."""
        read = self._reads.get(run_id)
        return read is not None and read[1] <= seq and time.monotonic() - read[0] < quiet


_quiet_reads = QuietReads()


async def _stored(
    database: Database, workspace_id: uuid.UUID, run_id: uuid.UUID, after: int
) -> list[RunEvent]:
    async with database.session() as session:
        rows = await session.execute(
            select(SyncRunEvent)
            .where(SyncRunEvent.run_id == run_id, col(SyncRunEvent.seq) > after)
            .order_by(col(SyncRunEvent.seq))
            .limit(MAX_EVENTS)
        )
        return [RunEvent.of(row, workspace_id) for row in rows.scalars().all()]


async def follow_workspace_runs(
    ctx: ServiceContext, *, workspace_id: uuid.UUID
) -> AsyncGenerator[SyncRun, None]:
    """A fresh snapshot of a run of the workspace each time one changes; never ends by
    itself (the client stops it)."""
    authorize(ctx, workspace_id)
    return _snapshots(ctx.events, ctx.database, workspace_id)


async def _snapshots(
    bus: RunEventBus, database: Database, workspace_id: uuid.UUID
) -> AsyncGenerator[SyncRun, None]:
    subscription = await bus.subscribe(workspace_id=workspace_id)
    sent: dict[uuid.UUID, int] = {}
    try:
        async for event in subscription:
            if event.seq <= sent.get(event.run_id, 0):
                continue
            async with database.session() as session:
                run = await session.get(SyncRun, event.run_id)
                latest = (
                    await session.execute(
                        select(SyncRunEvent.seq)
                        .where(SyncRunEvent.run_id == event.run_id)
                        .order_by(col(SyncRunEvent.seq).desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
            if run is None or run.workspace_id != workspace_id:
                continue
            # The snapshot already shows every event up to `latest`: skip those when they come.
            sent[event.run_id] = max(event.seq, latest or 0)
            yield run
    finally:
        subscription.close()
