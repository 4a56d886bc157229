"""The audience filter language (DESIGN §6): JSON parsed and type-checked into a typed tree.

Every problem is collected as a `FieldError` naming the condition's path (`filter.and[1].or[0]`)
and raised together as one `InvalidInput` (422); values come out converted (`filter_ops`).
A leaf on a NULL value is false (except `is_null`), and `not` negates that, so
`{"not": {"column": "c", "op": "eq", "value": 1}}` keeps the rows where `c` is NULL while
`{"column": "c", "op": "neq", "value": 1}` does not. Audience references are parsed on the same
model, through a resolver, with cycles detected and named.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import FieldError, InvalidInput
from app.sources.filter_ops import (
    COUNT_OPS,
    MAX_DAYS,
    OPERATOR_TYPES,
    TIME_TYPES,
    FilterOp,
    operand,
    whole_days,
)
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from models import Audience

MAX_DEPTH = 24
MAX_NODES = 2000
OP_NAMES = frozenset(op.value for op in FilterOp)
NODE_KEYS = ("and", "or", "not", "column", "event", "audience")


@dataclass(frozen=True)
class MatchAll:
    """The empty filter `{}`: every row of the model."""


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Node, ...]


@dataclass(frozen=True)
class Negation:
    condition: Node


@dataclass(frozen=True)
class ColumnCondition:
    column: ColumnSpec
    op: FilterOp
    #: A converted scalar; a tuple for `in`/`not_in`/`between`; days for `within_last_days`.
    value: Any = None


@dataclass(frozen=True)
class EventCondition:
    """Count the event model's rows whose `key` equals the member's key (DESIGN §6)."""

    model: ModelSpec
    key: ColumnSpec
    count_op: FilterOp
    count: int
    timestamp: ColumnSpec | None = None
    within_days: int | None = None
    where: Node | None = None


@dataclass(frozen=True)
class AudienceCondition:
    audience_id: uuid.UUID
    member: bool
    condition: Node  #: the referenced audience's own filter, parsed on the same model


Node = MatchAll | AllOf | AnyOf | Negation | ColumnCondition | EventCondition | AudienceCondition


@dataclass(frozen=True)
class AudienceSpec:
    id: uuid.UUID
    model_id: uuid.UUID
    filter: Mapping[str, Any]
    name: str = ""

    @classmethod
    def of(cls, audience: Audience) -> AudienceSpec:
        return cls(audience.id, audience.model_id, audience.filter, audience.name)

    def __str__(self) -> str:
        return f"{self.name!r} ({self.id})" if self.name else str(self.id)


class FilterResolver(Protocol):
    """How the compiler reaches other models and audiences of the same workspace."""

    async def model(self, model_id: uuid.UUID) -> ModelSpec | None: ...

    async def audience(self, audience_id: uuid.UUID) -> AudienceSpec | None: ...


class _Cycle(Exception):
    def __init__(self, chain: Sequence[AudienceSpec]) -> None:
        super().__init__(" → ".join(str(spec) for spec in chain))


@dataclass
class _Shared:
    """State shared by the parser of an audience and those of the audiences it refers to."""

    resolver: FilterResolver
    stack: list[AudienceSpec]
    parsed: dict[uuid.UUID, Node] = field(default_factory=dict)
    nodes: int = 0


async def parse_filter(
    raw: object,
    model: ModelSpec,
    resolver: FilterResolver,
    *,
    audience: AudienceSpec | None = None,
    path: str = "filter",
) -> Node:
    """The type-checked tree of `raw` on `model`, or an InvalidInput naming every problem.

    `audience` is the audience that owns the filter, when it exists: a reference back to it is
    a cycle.
    """
    parser = _Parser(_Shared(resolver, [audience] if audience else []), model, root=True)
    node = await parser.top(raw, path)
    if parser.errors or node is None:
        first = parser.errors[0]
        more = f" (and {len(parser.errors) - 1} more)" if len(parser.errors) > 1 else ""
        raise InvalidInput(f"{first.field}: {first.message}{more}", parser.errors)
    return node


class _Parser:
    def __init__(self, shared: _Shared, model: ModelSpec, *, root: bool) -> None:
        self.shared = shared
        self.model = model
        self.root = root
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    async def top(self, raw: object, path: str) -> Node | None:
        if isinstance(raw, Mapping) and not raw:
            return MatchAll()
        return await self.node(raw, path, self.model, depth=0, in_event=False)

    async def node(
        self, raw: object, path: str, model: ModelSpec, *, depth: int, in_event: bool
    ) -> Node | None:
        self.shared.nodes += 1
        if depth > MAX_DEPTH or self.shared.nodes > MAX_NODES:
            self.fail(path, f"the filter is too large (at most {MAX_DEPTH} levels deep)")
            return None
        kinds = [key for key in NODE_KEYS if isinstance(raw, Mapping) and key in raw]
        if not isinstance(raw, Mapping) or len(kinds) != 1:
            self.fail(path, f"a condition is an object with exactly one of {', '.join(NODE_KEYS)}")
            return None
        kind = kinds[0]
        if kind != "column" and len(raw) != 1:
            self.fail(path, f"unexpected keys beside {kind!r}: {sorted(set(raw) - {kind})}")
            return None
        body = raw[kind]
        if kind in ("and", "or"):
            if not isinstance(body, list) or not body:
                self.fail(path, f"{kind!r} takes a non-empty list of conditions")
                return None
            children = [
                await self.node(
                    item, f"{path}.{kind}[{i}]", model, depth=depth + 1, in_event=in_event
                )
                for i, item in enumerate(body)
            ]
            if any(child is None for child in children):
                return None
            kept = tuple(child for child in children if child is not None)
            return AllOf(kept) if kind == "and" else AnyOf(kept)
        if kind == "not":
            child = await self.node(body, f"{path}.not", model, depth=depth + 1, in_event=in_event)
            return Negation(child) if child is not None else None
        if kind == "column":
            return self.column(raw, path, model)
        if in_event:
            self.fail(path, f"an event's where holds column conditions only, not {kind!r}")
            return None
        if kind == "event":
            return await self.event(body, path, model, depth)
        return await self.audience(body, path, model)

    def column(self, raw: Mapping[str, Any], path: str, model: ModelSpec) -> Node | None:
        extra = sorted(set(raw) - {"column", "op", "value"})
        if extra:
            self.fail(path, f"unexpected keys {extra} (a column condition has column, op, value)")
            return None
        name, op_name = raw.get("column"), raw.get("op")
        column = model.column(name) if isinstance(name, str) else None
        if column is None:
            known = ", ".join(c.name for c in model.columns)
            self.fail(path, f"unknown column {name!r} (the model has: {known})")
            return None
        op = FilterOp(op_name) if isinstance(op_name, str) and op_name in OP_NAMES else None
        if op is None:
            self.fail(path, f"unknown operator {op_name!r} (known: {', '.join(FilterOp)})")
            return None
        if column.type not in OPERATOR_TYPES[op]:
            self.fail(path, f"operator {op} does not apply to {column.name!r}, a {column.type}")
            return None
        try:
            value = operand(op, column.type, raw.get("value"), "value" in raw)
        except ValueError as exc:
            self.fail(path, f"{column.name!r} {op}: {exc}")
            return None
        return ColumnCondition(column, op, value)

    async def event(
        self, body: object, path: str, model: ModelSpec, depth: int
    ) -> EventCondition | None:
        path = f"{path}.event"
        allowed = {"model_id", "key", "timestamp", "where", "count", "within_days"}
        if not isinstance(body, Mapping) or set(body) - allowed:
            self.fail(path, f"an event condition is an object with keys {sorted(allowed)}")
            return None
        before = len(self.errors)
        events = await self.referenced_model(body.get("model_id"), path, model)
        if events is None:
            return None
        key_name = body.get("key")
        key = events.column(key_name) if isinstance(key_name, str) else None
        primary = model.column(model.primary_key)
        if key is None:
            self.fail(path, f"the event model has no key column {key_name!r}")
        elif (
            primary is not None
            and ColumnType.unknown not in (key.type, primary.type)
            and key.type != primary.type
        ):
            self.fail(path, f"key {key.name!r} is a {key.type}; the member key is a {primary.type}")
        timestamp, within_days = None, None
        if ("timestamp" in body) != ("within_days" in body):
            self.fail(path, "give timestamp and within_days together")
        elif "timestamp" in body:
            name = body["timestamp"]
            timestamp = events.column(name) if isinstance(name, str) else None
            if timestamp is None or timestamp.type not in TIME_TYPES:
                self.fail(path, f"timestamp {name!r} is not a timestamp or date column")
            within_days = whole_days(body["within_days"])
            if within_days is None:
                self.fail(path, f"within_days is a whole number from 1 to {MAX_DAYS}")
        count_op, count = self.count(body.get("count", {"op": "gte", "value": 1}), path)
        where = None
        if "where" in body:
            where = await self.node(
                body["where"], f"{path}.where", events, depth=depth + 1, in_event=True
            )
        if len(self.errors) > before or key is None or count_op is None:
            return None
        return EventCondition(events, key, count_op, count, timestamp, within_days, where)

    def count(self, raw: object, path: str) -> tuple[FilterOp | None, int]:
        if isinstance(raw, Mapping) and set(raw) == {"op", "value"} and raw["op"] in COUNT_OPS:
            value = raw["value"]
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
                return FilterOp(raw["op"]), value
        self.fail(path, f"count is {{op: one of {', '.join(COUNT_OPS)}, value: a count ≥ 0}}")
        return None, 0

    async def referenced_model(self, raw: object, path: str, model: ModelSpec) -> ModelSpec | None:
        model_id = _uuid(raw)
        events = await self.shared.resolver.model(model_id) if model_id else None
        if events is None:
            self.fail(path, f"no model {raw!r} in this workspace")
        elif model.source_id is not None and events.source_id != model.source_id:
            self.fail(path, f"model {events.name or events.id} is on another source")
        elif not events.columns:
            self.fail(path, f"model {events.name or events.id} has no introspected columns yet")
        else:
            return events
        return None

    async def audience(self, body: object, path: str, model: ModelSpec) -> AudienceCondition | None:
        path = f"{path}.audience"
        if not isinstance(body, Mapping) or not set(body) <= {"id", "member"} or "id" not in body:
            self.fail(path, "an audience condition is {id, member: true | false}")
            return None
        member = body.get("member", True)
        if not isinstance(member, bool):
            self.fail(path, "member is true or false")
            return None
        audience_id = _uuid(body["id"])
        spec = await self.shared.resolver.audience(audience_id) if audience_id else None
        if audience_id is None or spec is None:
            self.fail(path, f"no audience {body['id']!r} in this workspace")
            return None
        try:
            node = await self.referenced_filter(spec, model)
        except _Cycle as cycle:
            if not self.root:
                raise
            self.fail(path, f"audiences refer to each other in a cycle: {cycle}")
            return None
        if isinstance(node, str):
            self.fail(path, node)
            return None
        return AudienceCondition(spec.id, member, node)

    async def referenced_filter(self, spec: AudienceSpec, model: ModelSpec) -> Node | str:
        """The parsed filter of `spec`, or a message saying why it cannot be used here."""
        stack = self.shared.stack
        if any(seen.id == spec.id for seen in stack):
            start = next(i for i, seen in enumerate(stack) if seen.id == spec.id)
            raise _Cycle([*stack[start:], spec])
        if model.id is not None and spec.model_id != model.id:
            return f"audience {spec} is on another model"
        if spec.id in self.shared.parsed:
            return self.shared.parsed[spec.id]
        stack.append(spec)
        try:
            inner = _Parser(self.shared, model, root=False)
            node = await inner.top(spec.filter, "filter")
        finally:
            stack.pop()
        if inner.errors or node is None:
            first = inner.errors[0] if inner.errors else FieldError("filter", "invalid")
            return f"audience {spec} has an invalid filter: {first.field}: {first.message}"
        self.shared.parsed[spec.id] = node
        return node


def _uuid(raw: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None
