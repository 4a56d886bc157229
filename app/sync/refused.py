"""Rows the destination refused: the rejected and failed rows of a sync's most recent finished
run that had any, streamed in the membership's key order so the engine can merge them in.

`retry_failed_only` keeps just these keys of the audience and of the held state; every run
looks its members up here to count `retried_from_previous` and, when the sync's
`retry_failed_rows` is off, to hold back a row whose payload is the one that was refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from app.runs import TERMINAL_STATUSES
from app.sync.held import key_order
from models import RowResult, SyncRun
from models.enums import RowStatus

#: Row outcomes a later run may retry (an `invalid` row is re-evaluated by every normal run).
REFUSED = (RowStatus.rejected.value, RowStatus.failed.value)

T = TypeVar("T", bound=tuple[Any, ...])


@dataclass(frozen=True)
class Refused:
    key: str
    status: str
    error: str
    #: What was sent and refused (None for rows recorded before fingerprints were kept).
    fingerprint: str | None


async def last_refusing_run(session: AsyncSession, sync_id: uuid.UUID) -> uuid.UUID | None:
    """The sync's most recently finished run with a rejected or failed row, if any."""
    refused = exists().where(
        col(RowResult.run_id) == col(SyncRun.id), col(RowResult.status).in_(REFUSED)
    )
    query = (
        select(col(SyncRun.id))
        .where(
            col(SyncRun.sync_id) == sync_id,
            col(SyncRun.status).in_([s.value for s in TERMINAL_STATUSES]),
            refused,
        )
        .order_by(col(SyncRun.finished_at).desc(), col(SyncRun.created_at).desc())
        .limit(1)
    )
    found: uuid.UUID | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def refused_rows(
    engine: AsyncEngine, run_id: uuid.UUID, *, numeric: bool
) -> AsyncIterator[Refused]:
    """The run's rejected and failed rows, one per key, in the membership's key order."""
    query = (
        select(
            col(RowResult.member_key),
            col(RowResult.status),
            col(RowResult.error),
            col(RowResult.fingerprint),
        )
        .where(
            col(RowResult.run_id) == run_id,
            col(RowResult.status).in_(REFUSED),
            col(RowResult.member_key).is_not(None),
        )
        .order_by(key_order(col(RowResult.member_key), engine.dialect.name, numeric))
    )
    previous: str | None = None
    async with engine.connect() as connection:
        result = await connection.stream(query.execution_options(yield_per=5000))
        async for key, status, error, fingerprint in result:
            if key != previous:
                previous = key
                yield Refused(str(key), str(status), str(error or ""), fingerprint)


class KeyCursor:
    """Hands out the entries of a stream sorted by `sort_key` a stretch of keys at a time,
    asked in increasing key order."""

    def __init__(self, rows: AsyncIterator[Refused], sort_key: Callable[[str], Any]) -> None:
        self._rows = rows
        self._sort_key = sort_key
        self._next: Refused | None = None
        self._started = False
        self.exhausted = False

    async def upto(self, key: str | None) -> dict[str, Refused]:
        """The entries up to `key` (all that are left when None) that earlier calls did not
        hand out; entries before it are passed for good."""
        if not self._started:
            self._started = True
            await self._advance()
        found: dict[str, Refused] = {}
        bound = None if key is None else self._sort_key(key)
        while self._next is not None and (bound is None or self._sort_key(self._next.key) <= bound):
            found[self._next.key] = self._next
            await self._advance()
        return found

    async def _advance(self) -> None:
        try:
            self._next = await anext(self._rows)
        except StopAsyncIteration:
            self._next, self.exhausted = None, True

    async def aclose(self) -> None:
        aclose = getattr(self._rows, "aclose", None)
        if aclose is not None:
            await aclose()


async def only_keys(
    batches: AsyncIterator[Sequence[T]], wanted: KeyCursor
) -> AsyncIterator[list[T]]:
    """The items (tuples whose first element is the key) of a key-ordered stream of batches
    whose key `wanted` holds; stops reading the stream once `wanted` has nothing more (null
    keys, which come last, are never wanted)."""
    async for batch in batches:
        keyed = [item for item in batch if item[0] is not None]
        if not keyed:
            return
        found = await wanted.upto(keyed[-1][0])
        kept = [item for item in keyed if item[0] in found]
        if kept:
            yield kept
        if wanted.exhausted or len(keyed) < len(batch):
            return
