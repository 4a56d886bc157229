"""Run states: one table of legal moves and the one function that changes a run's status.

Every status change (worker, cancel path, reaper) goes through `transition_run`: it checks
the move against `TRANSITIONS`, updates with compare-and-set on the current status, appends a
`SyncRunEvent` in the same transaction, and hands the event to `publish` after commit. A run
is born `queued` with `queued_event` as its first event.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.errors import Conflict
from models import SyncRun, SyncRunEvent
from models.columns import utcnow
from models.enums import RunStatus

S = RunStatus

#: Every legal move; a status missing as a key is terminal.
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    S.queued: frozenset({S.running, S.cancelled, S.failed}),
    S.running: frozenset({S.succeeded, S.partial, S.failed, S.cancelling}),
    S.cancelling: frozenset({S.cancelled, S.succeeded, S.partial, S.failed}),
}
TERMINAL_STATUSES = frozenset(set(RunStatus) - set(TRANSITIONS))

Publish = Callable[[SyncRunEvent], Awaitable[None]]


class IllegalTransition(Conflict):
    """The move is not in the table, or another writer moved the run first."""

    code = "illegal_transition"


def is_legal(current: RunStatus, to: RunStatus) -> bool:
    return to in TRANSITIONS.get(current, frozenset())


async def append_event(
    session: AsyncSession, run_id: uuid.UUID, event_type: str, payload: dict[str, Any]
) -> SyncRunEvent:
    """Add the run's next event to the session (sequence numbers start at 1)."""
    last = (
        await session.execute(
            select(func.coalesce(func.max(SyncRunEvent.seq), 0)).where(
                SyncRunEvent.run_id == run_id
            )
        )
    ).scalar_one()
    event = SyncRunEvent(run_id=run_id, seq=int(last) + 1, type=event_type, payload=payload)
    session.add(event)
    return event


def queued_event(run: SyncRun) -> SyncRunEvent:
    """A new run's first event (seq 1): stored in the transaction that creates the run, so a
    follower sees the whole life of every run."""
    payload = {
        "status": RunStatus.queued.value,
        "from": None,
        "trigger": str(run.trigger),
        "attempt": run.attempt,
    }
    return SyncRunEvent(run_id=run.id, seq=1, type="status", payload=payload)


async def transition_run(
    session: AsyncSession,
    run: SyncRun,
    to: RunStatus,
    *,
    publish: Publish | None = None,
    **changes: Any,
) -> SyncRun:
    """Move `run` to `to` (with `changes` to other columns), or raise IllegalTransition."""
    run_id, current = run.id, RunStatus(run.status)
    if not is_legal(current, to):
        raise IllegalTransition(f"run {run_id} cannot go from {current.value} to {to.value}")
    now = utcnow()
    values: dict[str, Any] = {"status": to, **changes}
    if to is RunStatus.running and run.started_at is None:
        values.setdefault("started_at", now)
        values.setdefault("heartbeat_at", now)
    if to in TERMINAL_STATUSES:
        values.setdefault("finished_at", now)
        values.setdefault("phase", None)
    result = await session.execute(
        update(SyncRun)
        .where(col(SyncRun.id) == run_id, col(SyncRun.status) == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        raise IllegalTransition(f"run {run_id} was changed by another writer; not {current.value}")
    payload = {"status": to.value, "from": current.value}
    if "error" in values and values["error"] is not None:
        payload["error"] = values["error"]
    event = await append_event(session, run_id, "status", payload)
    await session.commit()
    await session.refresh(run)
    if publish is not None:
        await publish(event)
    return run
