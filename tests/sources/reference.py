"""A small Python evaluator of the filter language, written from DESIGN §6 and the documented
NULL rule, independent of the compiler: what the SQL must agree with on every dialect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass
class World:
    now: datetime
    types: Mapping[str, str]  #: column -> filter type, of the member model
    event_types: Mapping[str, str] = field(default_factory=dict)
    events: Sequence[Mapping[str, Any]] = ()  #: rows of the (single) event model
    audiences: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  #: id -> filter


def members(raw: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], world: World) -> set[Any]:
    return {row["id"] for row in rows if matches(raw, row, world.types, world)}


def matches(
    node: Mapping[str, Any], row: Mapping[str, Any], types: Mapping[str, str], world: World
) -> bool:
    if not node:
        return True
    if "and" in node:
        return all(matches(child, row, types, world) for child in node["and"])
    if "or" in node:
        return any(matches(child, row, types, world) for child in node["or"])
    if "not" in node:
        return not matches(node["not"], row, types, world)
    if "audience" in node:
        inside = matches(world.audiences[node["audience"]["id"]], row, types, world)
        return inside if node["audience"].get("member", True) else not inside
    if "event" in node:
        return _event(node["event"], row, world)
    return _leaf(node, row[node["column"]], types[node["column"]], world.now)


def _event(body: Mapping[str, Any], row: Mapping[str, Any], world: World) -> bool:
    count = 0
    for event in world.events:
        if event[body["key"]] is None or event[body["key"]] != row["id"]:
            continue
        if "within_days" in body and not _within(
            event[body["timestamp"]],
            world.event_types[body["timestamp"]],
            body["within_days"],
            world.now,
        ):
            continue
        if "where" in body and not matches(body["where"], event, world.event_types, world):
            continue
        count += 1
    rule = body.get("count", {"op": "gte", "value": 1})
    return _compare(rule["op"], count, rule["value"])


def _leaf(node: Mapping[str, Any], value: Any, kind: str, now: datetime) -> bool:
    op = node["op"]
    if op == "is_null":
        return value is None
    if op == "is_not_null":
        return value is not None
    if value is None:
        return False
    operand = node.get("value")
    if op == "within_last_days":
        return _within(value, kind, operand, now)
    if op in ("in", "not_in"):
        inside = any(value == _typed(item, kind) for item in operand)
        return inside if op == "in" else not inside
    if op == "between":
        return _typed(operand[0], kind) <= value <= _typed(operand[1], kind)
    if op == "contains":
        return operand in value
    if op == "starts_with":
        return value.startswith(operand)
    if op == "ends_with":
        return value.endswith(operand)
    return _compare(op, value, _typed(operand, kind))


def _compare(op: str, left: Any, right: Any) -> bool:
    return {
        "eq": left == right,
        "neq": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
        "before": left < right,
        "after": left > right,
    }[op]


def _within(value: Any, kind: str, days: int, now: datetime) -> bool:
    if value is None:
        return False
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    if kind == "date":
        return (now - timedelta(days=days)).date() <= value <= now.date()
    return now - timedelta(days=days) <= value <= now


def _typed(raw: Any, kind: str) -> Any:
    if kind == "timestamp":
        parsed = datetime.fromisoformat(raw)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    if kind == "date":
        return date.fromisoformat(raw)
    return raw
