"""The membership stream (DESIGN §5.1): an audience's members, in key order, batch by batch.

Rows come through the source's streaming cursor (a server-side cursor on PostgreSQL, lazy
fetches on SQLite and DuckDB), so memory holds one batch, never the audience. A split group is
selected in Python from each key: the bucket is SHA-256 (which SQLite lacks), and one hashing
implementation is the only way every dialect and every process agree on every member.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.sources.connection import SourceConnection
from app.sources.filters import AudienceQuery
from app.sources.splits import SplitLayout

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class SplitSelection:
    """Only the members of `group` under the audience's salt and split layout."""

    salt: str
    layout: SplitLayout[Any]
    group: Hashable


def member_key(value: object) -> str | None:
    """A key's text form, the one hashed into split buckets and stored as `member_key`."""
    if value is None or isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


async def stream_members(
    connection: SourceConnection,
    query: AudienceQuery,
    *,
    columns: Sequence[str] | None = None,
    split: SplitSelection | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
    """`(member_key, row)` for each member in key order; `row` holds the key and `columns`
    (all of the model's columns when None).

    A NULL key comes through as None (last) for the engine to count as invalid, except when a
    split group is selected: a member without a key belongs to no group. Close the iterator
    (`contextlib.aclosing`) when leaving it early.
    """
    batches = stream_member_batches(
        connection, query, columns=columns, split=split, batch_size=batch_size
    )
    async with aclosing(batches):
        async for batch in batches:
            for member in batch:
                yield member


async def stream_member_batches(
    connection: SourceConnection,
    query: AudienceQuery,
    *,
    columns: Sequence[str] | None = None,
    split: SplitSelection | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AsyncGenerator[list[tuple[str | None, dict[str, Any]]]]:
    """The same members as `stream_members`, a batch at a time (cheaper per member)."""
    statement = query.members(columns)
    names = [column.name for column in statement.selected_columns]  # the key comes first
    async for rows in connection.stream(statement, batch_size=batch_size):
        batch = [(member_key(row[0]), dict(zip(names, row, strict=False))) for row in rows]
        if split is not None:
            layout, salt, group = split.layout, split.salt, split.group
            batch = [m for m in batch if m[0] is not None and layout.group_of(salt, m[0]) == group]
        if batch:
            yield batch


async def count_split_groups(
    connection: SourceConnection,
    query: AudienceQuery,
    *,
    salt: str,
    layout: SplitLayout[Any],
    batch_size: int = DEFAULT_BATCH,
) -> dict[Any, int]:
    """Each group's member count (for previews), streaming the keys only."""
    counts: Counter[Any] = Counter({group: 0 for group in layout.groups})
    async for batch in connection.stream(query.keys(), batch_size=batch_size):
        for row in batch:
            key = member_key(row[0])
            if key is not None:
                counts[layout.group_of(salt, key)] += 1
    return dict(counts)
