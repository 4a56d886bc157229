"""The membership stream (DESIGN §5.1): an audience's members, in key order, batch by batch.

Rows come a batch at a time: on PostgreSQL column by column through `COPY … TO STDOUT`
(`postgres_copy`), or through a server-side cursor for the types COPY's text is not read back
from; lazy fetches on SQLite and DuckDB. Memory holds a batch or two, never the audience. A
split group is selected in Python from each key: the bucket is SHA-256 (which SQLite lacks),
and one hashing implementation is the only way every dialect and every process agree on every
member.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from app.sources.connection import SourceConnection
from app.sources.filters import AudienceQuery
from app.sources.source_connection import ColumnBatch
from app.sources.splits import SplitLayout

DEFAULT_BATCH = 5000
#: Container objects a stream keeps alive per row of its batch size, at most: the source's
#: rows of the batch handed on and of the one being fetched, and each handed-on member's tuple
#: and dict (see `young_generation_room`).
ROOM_PER_BATCH_ROW = 4


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


def member_keys(values: Sequence[Any]) -> Sequence[str | None]:
    """`member_key` of each value; a column of plain integers or of text (PostgreSQL's keys,
    and most others) converts in one pass without a call per key."""
    kinds = set(map(type, values))
    if kinds == {int}:
        return list(map(str, values))
    if kinds <= {str, type(None)}:
        return values
    return list(map(member_key, values))


def row_dicts(names: Sequence[str]) -> Callable[[Sequence[Sequence[Any]]], list[dict[str, Any]]]:
    """A function turning a batch of rows into dicts keyed by `names` (later names win, as in
    `dict(zip(names, row))`), at about half the cost of `dict(zip(…))` per row: one list
    comprehension building each dict from a literal of the row's width, presized at once."""
    return _row_dicts_of_width(len(names))(*names)


@lru_cache(maxsize=128)
def _row_dicts_of_width(width: int) -> Callable[..., Callable[[Sequence[Sequence[Any]]], Any]]:
    # The source holds only positions and the parameter names k0…kN: the column names (the
    # model author's) reach the code as arguments, never as text of it.
    keys = ", ".join(f"k{i}" for i in range(width))
    items = ", ".join(f"k{i}: row[{i}]" for i in range(width))
    source = f"def bind({keys}):\n    return lambda rows: [{{{items}}} for row in rows]\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<row_dicts {width}>", "exec"), {"__builtins__": {}}, namespace)
    bind: Callable[..., Callable[[Sequence[Sequence[Any]]], Any]] = namespace["bind"]
    return bind


Members = list[tuple[str | None, dict[str, Any]]]


def member_rows(
    names: Sequence[str],
) -> Callable[[Sequence[str | None], Sequence[Sequence[Any]]], Members]:
    """`row_dicts` for a batch given column by column (PostgreSQL's COPY path): a function
    turning the batch's member keys and its columns (the key's first) into members."""
    return _member_rows_of_width(len(names))(*names)


@lru_cache(maxsize=128)
def _member_rows_of_width(width: int) -> Callable[..., Callable[..., Members]]:
    # The source holds only positions and the parameter names k0…kN: the column names (the
    # model author's) reach the code as arguments, never as text of it.
    keys = ", ".join(f"k{i}" for i in range(width))
    values = ", ".join(f"v{i}" for i in range(width))
    items = ", ".join(f"k{i}: v{i}" for i in range(width))
    source = (
        f"def bind({keys}):\n"
        f"    return lambda keys, columns: [\n"
        f"        (key, {{{items}}}) for key, {values} in zip(keys, *columns)\n"
        f"    ]\n"
    )
    namespace: dict[str, Any] = {}
    exec(
        compile(source, f"<member_rows {width}>", "exec"), {"__builtins__": {"zip": zip}}, namespace
    )
    bind: Callable[..., Callable[..., Members]] = namespace["bind"]
    return bind


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
    (`contextlib.aclosing`) when leaving it early: on PostgreSQL that stops the COPY at once
    (an iterator left open keeps it running until the next statement on the connection).
    """
    batches = stream_member_batches(
        connection, query, columns=columns, split=split, batch_size=batch_size
    )
    async with aclosing(batches):
        async for batch in batches:
            for member in batch:
                yield member


@dataclass(frozen=True, slots=True)
class LineBatch:
    """A batch of members that came as lines of text (PostgreSQL's COPY): each member's key
    and line at once, its row only when asked for (`rows_at`). Under the same `layout` (the
    statement and its column types), the same line is the same row, so a consumer that
    knows a line from before can skip decoding it."""

    keys: Sequence[str | None]
    lines: Sequence[bytes]
    layout: str
    #: The members at some positions of the batch, their rows decoded.
    decode: Callable[[Sequence[int]], Members]

    def rows_at(self, positions: Sequence[int]) -> Members:
        return self.decode(positions)

    def members(self) -> Members:
        """Every member, decoded."""
        return self.decode(range(len(self.keys)))

    def only(self, positions: Sequence[int]) -> LineBatch:
        """The members at `positions`, in that order."""
        decode = self.decode
        return LineBatch(
            [self.keys[i] for i in positions],
            [self.lines[i] for i in positions],
            self.layout,
            lambda picked: decode([positions[i] for i in picked]),
        )


async def stream_member_batches(
    connection: SourceConnection,
    query: AudienceQuery,
    *,
    columns: Sequence[str] | None = None,
    split: SplitSelection | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> AsyncGenerator[Members]:
    """The same members as `stream_members`, a batch at a time (cheaper per member).

    This is the hot path of a sync: per row, one dict built by `row_dicts` (or `member_rows`
    from PostgreSQL's columns), one key by `member_keys` (or taken from COPY's text), no other
    Python work, and no garbage collections triggered by the batch in flight
    (`young_generation_room`).
    """
    batches = stream_line_batches(
        connection, query, columns=columns, split=split, batch_size=batch_size, lines=False
    )
    async with aclosing(batches):
        async for batch in batches:
            yield batch.members() if isinstance(batch, LineBatch) else batch


async def stream_line_batches(
    connection: SourceConnection,
    query: AudienceQuery,
    *,
    columns: Sequence[str] | None = None,
    split: SplitSelection | None = None,
    batch_size: int = DEFAULT_BATCH,
    lines: bool = True,
) -> AsyncGenerator[Members | LineBatch]:
    """`stream_member_batches`, except that a batch that came as lines of text (and `lines`)
    comes as a `LineBatch`, decoded only as far as its consumer asks."""
    statement = query.members(columns)
    names = [column.name for column in statement.selected_columns]  # the key comes first
    as_members, as_dicts, first = member_rows(names), row_dicts(names), itemgetter(0)
    with young_generation_room(ROOM_PER_BATCH_ROW * batch_size):
        columnar = await connection.column_batches(statement, batch_size=batch_size)
        batches = (
            columnar
            if columnar is not None
            else connection.stream(statement, batch_size=batch_size)
        )
        async with aclosing(batches):
            async for values in batches:
                batch: Members | LineBatch
                if isinstance(values, ColumnBatch):
                    batch = _column_batch(values, as_members, lines)
                else:  # rows
                    keys = member_keys(list(map(first, values)))
                    batch = list(zip(keys, as_dicts(values), strict=True))
                    del keys
                del values  # held no longer than the source holds them
                if split is not None:
                    batch = _in_group(batch, split)
                if isinstance(batch, LineBatch) and not batch.keys:
                    continue
                if batch:
                    yield batch
                del batch


def _column_batch(
    values: ColumnBatch,
    as_members: Callable[[Sequence[str | None], Sequence[Sequence[Any]]], Members],
    lines: bool,
) -> Members | LineBatch:
    texts, by_column = values.key_texts, values.columns
    keys = member_keys(by_column[0]) if texts is None else texts
    rows_at = getattr(by_column, "rows_at", None)
    if not lines or values.lines is None or rows_at is None:
        return as_members(keys, by_column)

    def decode(positions: Sequence[int]) -> Members:
        return as_members([keys[i] for i in positions], rows_at(positions))

    return LineBatch(keys, values.lines, values.layout, decode)


def _in_group(batch: Members | LineBatch, split: SplitSelection) -> Members | LineBatch:
    layout, salt, group = split.layout, split.salt, split.group
    if isinstance(batch, LineBatch):
        keys = batch.keys
        return batch.only(
            [
                i
                for i, key in enumerate(keys)
                if key is not None and layout.group_of(salt, key) == group
            ]
        )
    return [m for m in batch if m[0] is not None and layout.group_of(salt, m[0]) == group]


class _YoungGeneration:
    """Room in the garbage collector's youngest generation for the batches streams hold.

    CPython collects generation 0 each time the container objects allocated and not yet freed
    outnumber its threshold (700). A stream holds thousands (a batch of driver rows, then a
    tuple and a dict per member) for as long as each batch takes, so collections keep moving
    them to older generations, whose counters (which frees never lower) soon call for full
    collections of the whole heap: on a 1 000 000-member stream that was nearly a third of
    the time, for no garbage at all (rows hold no cycles; they are freed by reference counting).

    While streams run, the threshold is raised by the room each asks for (a few batches' worth
    of objects), so one batch in flight no longer triggers a collection. Cyclic garbage made
    meanwhile anywhere in the process is still collected, after at most that many more
    allocations. The last stream out puts back the threshold it found; a threshold changed by
    someone else in the meantime is kept, and a collector switched off (threshold 0) stays off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._room = 0  #: the room of the streams running now
        self._base = 0  #: the threshold without it
        self._ours = 0  #: the threshold last set here

    @contextmanager
    def room(self, objects: int) -> Iterator[None]:
        self._change(objects)
        try:
            yield
        finally:
            self._change(-objects)

    def _change(self, objects: int) -> None:
        with self._lock:
            first, second, third = gc.get_threshold()
            if not self._room or first != self._ours:  # first stream in, or set by others
                self._base = first
            self._room += objects
            self._ours = self._base + self._room if self._base else 0
            gc.set_threshold(self._ours, second, third)


young_generation_room = _YoungGeneration().room


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
