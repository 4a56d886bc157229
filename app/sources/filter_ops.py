"""The operators of the filter language, the column types each applies to, and its values.

Values come out converted: numbers checked to fit 64 bits (or be finite), strings checked to be
storable text, timestamps as aware UTC datetimes truncated to the millisecond (the precision
every dialect compares at; a naive timestamp is UTC), dates as dates.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from app.sources.model import ColumnType

MAX_LIST = 1000
MAX_STRING = 100_000
MAX_DAYS = 36_500
INT64 = (-(2**63), 2**63 - 1)


class FilterOp(StrEnum):
    eq = "eq"
    neq = "neq"
    gt = "gt"
    gte = "gte"
    lt = "lt"
    lte = "lte"
    in_ = "in"
    not_in = "not_in"
    contains = "contains"
    starts_with = "starts_with"
    ends_with = "ends_with"
    is_null = "is_null"
    is_not_null = "is_not_null"
    between = "between"  #: `[low, high]`, inclusive
    within_last_days = "within_last_days"  #: now - N days <= value <= now
    before = "before"  #: strictly earlier
    after = "after"  #: strictly later


_S, _N, _B, _T, _D, _U = (
    ColumnType.string,
    ColumnType.number,
    ColumnType.boolean,
    ColumnType.timestamp,
    ColumnType.date,
    ColumnType.unknown,
)
_ORDERED = frozenset({_N, _T, _D})
TIME_TYPES = frozenset({_T, _D})
#: The column types each operator applies to.
OPERATOR_TYPES: dict[FilterOp, frozenset[ColumnType]] = {
    FilterOp.eq: frozenset({_S, _N, _B, _T, _D}),
    FilterOp.neq: frozenset({_S, _N, _B, _T, _D}),
    FilterOp.gt: _ORDERED,
    FilterOp.gte: _ORDERED,
    FilterOp.lt: _ORDERED,
    FilterOp.lte: _ORDERED,
    FilterOp.between: _ORDERED,
    FilterOp.in_: frozenset({_S, _N}),
    FilterOp.not_in: frozenset({_S, _N}),
    FilterOp.contains: frozenset({_S}),
    FilterOp.starts_with: frozenset({_S}),
    FilterOp.ends_with: frozenset({_S}),
    FilterOp.is_null: frozenset(ColumnType),
    FilterOp.is_not_null: frozenset(ColumnType),
    FilterOp.within_last_days: TIME_TYPES,
    FilterOp.before: TIME_TYPES,
    FilterOp.after: TIME_TYPES,
}
COUNT_OPS = (FilterOp.eq, FilterOp.neq, FilterOp.gt, FilterOp.gte, FilterOp.lt, FilterOp.lte)


def operand(op: FilterOp, column_type: ColumnType, raw: object, given: bool) -> Any:
    """The converted value of a condition, or a ValueError saying what was expected."""
    if op in (FilterOp.is_null, FilterOp.is_not_null):
        if given and raw is not None:
            raise ValueError("takes no value")
        return None
    if op is FilterOp.within_last_days:
        days = whole_days(raw)
        if days is None:
            raise ValueError(f"the value is a whole number of days from 1 to {MAX_DAYS}")
        return days
    if op in (FilterOp.in_, FilterOp.not_in):
        if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
            raise ValueError(f"the value is a non-empty list of at most {MAX_LIST} values")
        return tuple(scalar(column_type, item) for item in raw)
    if op is FilterOp.between:
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("the value is a list [low, high]")
        return (scalar(column_type, raw[0]), scalar(column_type, raw[1]))
    return scalar(column_type, raw)


def scalar(column_type: ColumnType, raw: object) -> Any:
    """One value of a column of `column_type`, converted; a ValueError when it does not fit."""
    if raw is None:
        raise ValueError("the value is missing or null (use is_null / is_not_null)")
    if column_type is ColumnType.string and isinstance(raw, str):
        if len(raw) > MAX_STRING:
            raise ValueError(f"the value is longer than {MAX_STRING} characters")
        if "\x00" in raw:
            raise ValueError("the value contains a NUL character")
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the value is not valid Unicode text") from None
        return raw
    if column_type is ColumnType.number and isinstance(raw, int | float):
        if isinstance(raw, bool):
            raise ValueError("the value is a number, not a boolean")
        if isinstance(raw, int) and not INT64[0] <= raw <= INT64[1]:
            raise ValueError("the number is out of the 64-bit range")
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError("the number is not finite")
        return raw
    if column_type is ColumnType.boolean and isinstance(raw, bool):
        return raw
    if column_type is ColumnType.timestamp and isinstance(raw, str):
        return parse_timestamp(raw)
    if column_type is ColumnType.date and isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{raw[:40]!r} is not a date (YYYY-MM-DD)") from None
    expected = {_T: "an ISO-8601 timestamp string", _D: "a date string (YYYY-MM-DD)"}
    raise ValueError(f"the value is {expected.get(column_type, f'a {column_type}')}")


def parse_timestamp(raw: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime at millisecond precision (naive = UTC)."""
    try:
        value = datetime.fromisoformat(raw)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{raw[:40]!r} is not an ISO-8601 timestamp") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def whole_days(raw: object) -> int | None:
    ok = isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= MAX_DAYS
    return raw if ok else None  # type: ignore[return-value]
