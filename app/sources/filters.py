"""Audience filters compiled to SQLAlchemy Core (DESIGN §6): one dialect-neutral `Select` of the
model's rows, every value a bound parameter.

An event condition is a correlated `count(*)` subquery on the event model's query or table; an
audience condition inlines the referenced audience's own condition on the same model row; `not`
is `NOT coalesce(…, false)` so a condition on NULL is false before it is negated (see
`filter_tree`). `within_last_days` and event windows are bound against the `now` given at
compile time.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, FromClause

from app.errors import InvalidInput
from app.sources.dialect_sql import (
    DateParam,
    TimestampParam,
    date_value,
    key_order,
    text_position,
    text_value,
    timestamp_value,
)
from app.sources.filter_ops import FilterOp
from app.sources.filter_tree import (
    AllOf,
    AnyOf,
    AudienceCondition,
    AudienceSpec,
    ColumnCondition,
    EventCondition,
    FilterResolver,
    MatchAll,
    Negation,
    Node,
    parse_filter,
)
from app.sources.model import ColumnType, ModelSpec

Condition = ColumnElement[bool]
SAMPLE_LIMIT = 100
_COMPARE: dict[FilterOp, Callable[[Any, Any], Any]] = {
    FilterOp.eq: operator.eq,
    FilterOp.neq: operator.ne,
    FilterOp.gt: operator.gt,
    FilterOp.gte: operator.ge,
    FilterOp.lt: operator.lt,
    FilterOp.lte: operator.le,
    FilterOp.before: operator.lt,
    FilterOp.after: operator.gt,
}


@dataclass(frozen=True)
class AudienceQuery:
    """An audience's membership on its model: statements to count, sample and stream it."""

    model: ModelSpec
    relation: FromClause
    condition: Condition

    @property
    def key(self) -> ColumnElement[Any]:
        return self.relation.c[self.model.primary_key]

    def key_ordering(self) -> ColumnElement[Any]:
        """Key order: numeric for number keys, code point order of the text for the others."""
        column = self.model.column(self.model.primary_key)
        ordered = self.key if column and column.type is ColumnType.number else key_order(self.key)
        return ordered.asc().nulls_last()

    def members(self, columns: Sequence[str] | None = None) -> sa.Select[Any]:
        """The members' rows in key order (the key column always first)."""
        names = [self.model.primary_key]
        for name in columns if columns is not None else [c.name for c in self.model.columns]:
            if self.model.column(name) is None:
                raise InvalidInput.field("columns", f"the model has no column {name!r}")
            if name not in names:
                names.append(name)
        selected = [self.relation.c[name] for name in names]
        return sa.select(*selected).where(self.condition).order_by(self.key_ordering())

    def keys(self) -> sa.Select[Any]:
        return self.members([])

    def sample(
        self, columns: Sequence[str] | None = None, limit: int = SAMPLE_LIMIT
    ) -> sa.Select[Any]:
        return self.members(columns).limit(limit)

    def count(self) -> sa.Select[Any]:
        return sa.select(sa.func.count()).select_from(self.relation).where(self.condition)


async def compile_audience(
    raw_filter: object,
    model: ModelSpec,
    resolver: FilterResolver,
    *,
    audience: AudienceSpec | None = None,
    now: datetime | None = None,
    path: str = "filter",
) -> AudienceQuery:
    """Parse, type-check and compile `raw_filter` on `model`; a 422 naming every problem.

    `audience` is the audience the filter belongs to (so a reference back to it is a cycle).
    """
    if not model.columns:
        raise InvalidInput.field("model_id", "the model's columns have not been introspected")
    if model.column(model.primary_key) is None:
        raise InvalidInput.field("primary_key", f"the model has no column {model.primary_key!r}")
    node = await parse_filter(raw_filter, model, resolver, audience=audience, path=path)
    return build_query(node, model, now=now)


def build_query(node: Node, model: ModelSpec, *, now: datetime | None = None) -> AudienceQuery:
    relation = model.relation("model")
    condition = _Compiler(now).condition(node, relation, model)
    return AudienceQuery(model, relation, condition)


def referenced_ids(raw_filter: object) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """The audience ids and event model ids a stored filter names (for in-use checks)."""
    found: dict[str, set[uuid.UUID]] = {"audience": set(), "event": set()}
    id_keys = {"audience": "id", "event": "model_id"}
    pending = [raw_filter]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            for kind, id_key in id_keys.items():
                body = node.get(kind)
                if isinstance(body, dict) and isinstance(body.get(id_key), str):
                    try:
                        found[kind].add(uuid.UUID(body[id_key]))
                    except ValueError:
                        pass
            pending.extend(node.values())
    return found["audience"], found["event"]


class _Compiler:
    def __init__(self, now: datetime | None) -> None:
        now = (now or datetime.now(UTC)).astimezone(UTC)
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self.events = 0

    def condition(self, node: Node, relation: FromClause, model: ModelSpec) -> Condition:
        match node:
            case MatchAll():
                return sa.true()
            case AllOf(conditions):
                return sa.and_(*(self.condition(c, relation, model) for c in conditions))
            case AnyOf(conditions):
                return sa.or_(*(self.condition(c, relation, model) for c in conditions))
            case Negation(inner):
                return _negate(self.condition(inner, relation, model))
            case ColumnCondition():
                return self.column(node, relation)
            case EventCondition():
                return self.event(node, relation, model)
            case AudienceCondition(member=member, condition=inner):
                compiled = self.condition(inner, relation, model)
                return compiled if member else _negate(compiled)
        raise TypeError(f"not a filter node: {node!r}")

    def column(self, node: ColumnCondition, relation: FromClause) -> Condition:
        raw = relation.c[node.column.name]
        kind, op, value = node.column.type, node.op, node.value
        expr = _typed(raw, kind)
        if op is FilterOp.is_null:
            return raw.is_(None)
        if op is FilterOp.is_not_null:
            return raw.is_not(None)
        if op in _COMPARE:
            return _COMPARE[op](expr, _param(value, kind))
        if op is FilterOp.in_:
            return expr.in_([_param(item, kind) for item in value])
        if op is FilterOp.not_in:
            return expr.not_in([_param(item, kind) for item in value])
        if op is FilterOp.between:
            return expr.between(_param(value[0], kind), _param(value[1], kind))
        if op is FilterOp.within_last_days:
            return self.window(expr, kind, value)
        if value == "":
            return raw.is_not(None)  # every text contains, starts and ends with ""
        if op is FilterOp.contains:
            return text_position(expr, _param(value, kind)) > 0
        length = sa.bindparam(None, len(value), type_=sa.Integer())
        if op is FilterOp.starts_with:
            return sa.func.substr(expr, 1, length) == _param(value, kind)
        if op is FilterOp.ends_with:
            start = sa.func.length(expr) - length + 1
            return sa.and_(
                sa.func.length(expr) >= length, sa.func.substr(expr, start) == _param(value, kind)
            )
        raise ValueError(f"operator {op} has no compilation")

    def window(self, expr: ColumnElement[Any], kind: ColumnType, days: int) -> Condition:
        """`now - days <= expr <= now`, on a timestamp or a date."""
        start, end = self.now - timedelta(days=days), self.now
        if kind is ColumnType.date:
            return expr.between(_param(start.date(), kind), _param(end.date(), kind))
        return expr.between(_param(start, kind), _param(end, kind))

    def event(self, node: EventCondition, relation: FromClause, model: ModelSpec) -> Condition:
        self.events += 1
        events = node.model.relation(f"event_{self.events}")
        member_key = relation.c[model.primary_key]
        event_key = events.c[node.key.name]
        if node.key.type is ColumnType.string:
            where = [text_value(event_key) == text_value(member_key)]
        else:
            where = [event_key == member_key]
        if node.timestamp is not None and node.within_days is not None:
            kind = node.timestamp.type
            where.append(
                self.window(_typed(events.c[node.timestamp.name], kind), kind, node.within_days)
            )
        if node.where is not None:
            where.append(self.condition(node.where, events, node.model))
        count = (
            sa.select(sa.func.count())
            .select_from(events)
            .where(*where)
            .correlate(relation)
            .scalar_subquery()
        )
        threshold = sa.bindparam(None, node.count, type_=sa.Integer())
        return _COMPARE[node.count_op](count, threshold)


def _negate(condition: Condition) -> Condition:
    return sa.not_(sa.func.coalesce(condition, sa.false()))


def _typed(column: ColumnElement[Any], kind: ColumnType) -> ColumnElement[Any]:
    if kind is ColumnType.string:
        return text_value(column)
    if kind is ColumnType.timestamp:
        return timestamp_value(column)
    if kind is ColumnType.date:
        return date_value(column)
    return column


def _param(value: Any, kind: ColumnType) -> sa.BindParameter[Any]:
    types: dict[ColumnType, Any] = {
        ColumnType.string: sa.String(),
        ColumnType.boolean: sa.Boolean(),
        ColumnType.timestamp: TimestampParam(),
        ColumnType.date: DateParam(),
    }
    if kind is ColumnType.number:
        return sa.bindparam(
            None, value, type_=sa.BigInteger() if isinstance(value, int) else sa.Float()
        )
    return sa.bindparam(None, value, type_=types[kind])
