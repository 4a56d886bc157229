"""The audience side of a run: the membership stream's batches become `Members`: valid
members mapped, normalised and fingerprinted a batch at a time, and the rows that cannot be
sent (a null or duplicate key, a value normalisation refuses) set apart with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from app.destinations.identifiers import InvalidValue
from app.sync.mapping import fingerprints, row_fingerprints, row_mapper
from app.sync.plan import Members, Payload

Raw = tuple[str | None, dict[str, Any]]
Prepare = Callable[[Payload], Payload]

_key = itemgetter(0)
_row = itemgetter(1)


async def member_batches(
    batches: AsyncIterator[Sequence[Raw]],
    field_mapping: Sequence[Mapping[str, str]],
    prepare: Prepare | None,
) -> AsyncIterator[Members]:
    """`Members` of each batch of (key, row) in key order (None keys last). The rows of a
    batch's last key wait for the next batch, which may hold more of them (a duplicate)."""
    carry: list[Raw] = []
    async for batch in batches:
        rows = carry + list(batch) if carry else list(batch)
        if not rows:
            continue
        last = rows[-1][0]
        carry = []
        if last is not None:
            start = len(rows) - 1
            while start > 0 and rows[start - 1][0] == last:
                start -= 1
            rows, carry = rows[:start], rows[start:]
        if rows:
            await asyncio.sleep(0)  # let waiting commits and deliveries go on first
            yield _members(rows, field_mapping, prepare)
    if carry:
        yield _members(carry, field_mapping, prepare)


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
