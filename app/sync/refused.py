"""Rows the destination refused: the rejected and failed rows of a sync's most recent finished
run that had any, streamed in the membership's key order so the engine can merge them in.

`retry_failed_only` keeps just these keys of the audience and of the held state; every run
looks its members up here to count `retried_from_previous` and, when the sync's
`retry_failed_rows` is off, to hold back a row whose payload is the one that was refused.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
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

T = TypeVar("T")


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
    """Looks keys up in a stream sorted by `sort_key`, asked in increasing key order."""

    def __init__(self, rows: AsyncIterator[Refused], sort_key: Callable[[str], Any]) -> None:
        self._rows = rows
        self._sort_key = sort_key
        self._current: Refused | None = None
        self._started = False
        self.exhausted = False

    async def find(self, key: str) -> Refused | None:
        """The entry for `key`, or None; entries before it are passed for good."""
        if not self._started:
            self._started = True
            await self._advance()
        wanted = self._sort_key(key)
        while self._current is not None and self._sort_key(self._current.key) < wanted:
            await self._advance()
        if self._current is not None and self._current.key == key:
            return self._current
        return None

    async def _advance(self) -> None:
        try:
            self._current = await anext(self._rows)
        except StopAsyncIteration:
            self._current, self.exhausted = None, True

    async def aclose(self) -> None:
        aclose = getattr(self._rows, "aclose", None)
        if aclose is not None:
            await aclose()


async def only_keys(
    stream: AsyncIterator[tuple[str | None, T]], wanted: KeyCursor
) -> AsyncIterator[tuple[str | None, T]]:
    """The items of a key-ordered stream whose key `wanted` holds; stops reading the stream
    once `wanted` has nothing more (null keys, which come last, are never wanted)."""
    async for item in stream:
        key = item[0]
        if key is not None and await wanted.find(key) is not None:
            yield item
        elif wanted.exhausted or key is None:
            return
