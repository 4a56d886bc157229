"""The audience side of a run: the membership stream's batches become `Members`: valid
members mapped, normalised and fingerprinted a batch at a time, and the rows that cannot be
sent (a null or duplicate key, a value normalisation refuses) set apart with the reason.

A batch that came as lines of text becomes `Lines` instead, when the run has row digests:
each member's key and line digest, settled into `Members` only for the members the plan
cannot tell unchanged from their digest. Such a batch must hold no null key and no key
twice, and share no key with the next batch; one that does is decoded and goes the way of
every other batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from itertools import groupby
from operator import itemgetter
from typing import Any

from app.destinations.identifiers import InvalidValue
from app.sources.membership import LineBatch
from app.sync.mapping import fingerprints, row_fingerprints, row_mapper
from app.sync.plan import Lines, Members, Payload
from app.sync.row_digest import RowDigests

Raw = tuple[str | None, dict[str, Any]]
Prepare = Callable[[Payload], Payload]
Batch = Sequence[Raw] | LineBatch

_key = itemgetter(0)
_row = itemgetter(1)


async def member_batches(
    batches: AsyncIterator[Batch],
    field_mapping: Sequence[Mapping[str, str]],
    prepare: Prepare | None,
    digests: RowDigests | None = None,
    *,
    known: bool = True,
) -> AsyncIterator[Members | Lines]:
    """`Members` (or `Lines`) of each batch of (key, row) in key order (None keys last). The
    rows of a batch's last key wait for the next batch, which may hold more of them (a
    duplicate). Not `known`: batches of lines are settled whole (a run that resends every
    member), their members carrying their digests all the same."""
    carry: list[Raw] = []
    waiting: LineBatch | None = None  # lines, until the next batch shows where it starts
    async for batch in batches:
        first = _first_key(batch)
        if waiting is not None:
            if first is not None and first == waiting.keys[-1]:  # one key across the two
                carry = waiting.members()
            else:
                yield _lines(waiting, field_mapping, prepare, digests, known)
            waiting = None
        if isinstance(batch, LineBatch):
            if digests is not None and _clean(batch) and not (carry and first == carry[-1][0]):
                if carry:  # the rows of a key that ends there
                    yield _members(carry, field_mapping, prepare)
                carry, waiting = [], batch
                continue
            batch = batch.members()
        rows = carry + list(batch) if carry else list(batch)
        carry = []
        if rows:
            last = rows[-1][0]
            if last is not None:
                start = len(rows) - 1
                while start > 0 and rows[start - 1][0] == last:
                    start -= 1
                rows, carry = rows[:start], rows[start:]
        if rows:
            await asyncio.sleep(0)  # let waiting commits and deliveries go on first
            yield _members(rows, field_mapping, prepare)
    if waiting is not None:
        yield _lines(waiting, field_mapping, prepare, digests, known)
    if carry:
        yield _members(carry, field_mapping, prepare)


async def decoded_batches(batches: AsyncIterator[Batch]) -> AsyncIterator[Sequence[Raw]]:
    """The batches, each of (key, row): a batch of lines decoded whole."""
    async for batch in batches:
        yield batch.members() if isinstance(batch, LineBatch) else batch


def _first_key(batch: Batch) -> str | None:
    if isinstance(batch, LineBatch):
        return batch.keys[0] if batch.keys else None
    return batch[0][0] if batch else None


def _clean(batch: LineBatch) -> bool:
    """No null key, no key twice."""
    keys = set(batch.keys)
    return None not in keys and len(keys) == len(batch.keys)


def _lines(
    batch: LineBatch,
    field_mapping: Sequence[Mapping[str, str]],
    prepare: Prepare | None,
    digests: RowDigests | None,
    known: bool,
) -> Lines | Members:
    assert digests is not None
    keys: list[str] = list(batch.keys)  # type: ignore[arg-type]  # `_clean`: none is None
    of_lines = digests(batch.layout, batch.lines)

    def settle(positions: list[int]) -> Members:
        members = _members(batch.rows_at(positions), field_mapping, prepare)
        if len(members.keys) == len(positions):
            return replace(members, digests=[of_lines[i] for i in positions])
        by_key = {keys[i]: of_lines[i] for i in positions}
        return replace(members, digests=[by_key[key] for key in members.keys])

    return Lines(keys, of_lines, settle) if known else settle(list(range(len(keys))))


def _members(
    rows: list[Raw], field_mapping: Sequence[Mapping[str, str]], prepare: Prepare | None
) -> Members:
    size = len(rows)
    keys: list[Any] = list(map(_key, rows))
    invalid: list[tuple[str | None, str]] = []
    unique = set(keys)
    if len(unique) != len(keys) or None in unique:
        rows, invalid = _unique(rows)
        keys = list(map(_key, rows))
    sources = list(map(_row, rows))
    mapped = row_mapper(field_mapping)
    if prepare is None:  # payloads are built for the members sent, not for every member
        fps = row_fingerprints(sources, field_mapping)
        return Members(keys, fps, None, sources, mapped, size, invalid)
    keys, payloads = _prepared(keys, list(map(mapped, sources)), prepare, invalid)
    return Members(keys, fingerprints(payloads), payloads, size=size, invalid=invalid)


def _unique(rows: list[Raw]) -> tuple[list[Raw], list[tuple[str | None, str]]]:
    """The rows with a key of their own, and (key, reason) of each other row."""
    kept: list[Raw] = []
    invalid: list[tuple[str | None, str]] = []
    for key, group in groupby(rows, key=_key):
        same = list(group)
        if key is None:
            invalid.extend((None, "null key") for _ in same)
        elif len(same) > 1:
            invalid.extend((key, "duplicate key") for _ in same)
        else:
            kept.append(same[0])
    return kept, invalid


def _prepared(
    keys: list[str],
    payloads: list[Payload],
    prepare: Prepare,
    invalid: list[tuple[str | None, str]],
) -> tuple[list[str], list[Payload]]:
    """Each payload normalised for the destination; a refused one is recorded in `invalid`."""
    kept_keys: list[str] = []
    kept: list[Payload] = []
    for key, payload in zip(keys, payloads, strict=True):
        try:
            kept.append(prepare(payload))
        except InvalidValue as exc:
            invalid.append((key, str(exc)))
            continue
        kept_keys.append(key)
    return kept_keys, kept
