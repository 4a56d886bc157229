"""Every operator, connective, event condition and audience reference, on every dialect, against
hand-computed memberships of one small table of awkward rows."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Any

import pytest

from app.settings import Settings
from app.sources.filters import compile_audience
from app.sources.membership import stream_members
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from tests.sources.support import NOW, DictResolver, RealSource, collect, days_ago, fetch_keys

PEOPLE = [
    ("id", "int"),
    ("name", "ci_text"),
    ("email", "text"),
    ("score", "int"),
    ("ratio", "float"),
    ("active", "bool"),
    ("signed_up", "timestamp"),
    ("birthday", "date"),
    ("plan", "text"),
]
ROWS = [
    (1, "Alice", "alice@example.com", 10, 0.5, True, days_ago(1), date(1990, 1, 15), "pro"),
    (2, "alice", "ALICE@example.org", 20, 1.5, False, days_ago(10), date(1985, 6, 30), "free"),
    (3, "Bob_%", None, 30, None, True, days_ago(40), None, "pro"),
    (4, "O'Brien", "o'brien@example.com", None, -2.25, None, None, date(2000, 2, 29), None),
    (
        5,
        "Zoë 👍",
        "zoe@exämple.com",
        0,
        0,
        False,
        NOW + timedelta(days=1),
        date(1999, 12, 31),
        "team",
    ),
    (6, "50% off_x", "", -5, 100, True, days_ago(400), (NOW - timedelta(days=3)).date(), "free"),
]
EVENTS = [("customer_id", "int"), ("kind", "text"), ("at", "timestamp"), ("amount", "int")]
EVENT_ROWS = [
    (1, "purchase", days_ago(2), 10),
    (1, "purchase", days_ago(20), 5),
    (1, "view", days_ago(1), 0),
    (2, "purchase", days_ago(40), 7),
    (2, "Purchase", days_ago(1), 3),
    (3, "view", days_ago(5), 0),
    (3, "purchase", days_ago(2.5), 100),
    (3, "purchase", days_ago(4), 50),
    (3, "purchase", days_ago(6), 1),
    (99, "purchase", days_ago(1), 1),
]
ALL = {1, 2, 3, 4, 5, 6}


@dataclass
class People:
    model: ModelSpec
    resolver: DictResolver
    names: dict[str, str]  #: placeholder → id of the events model and audiences


@pytest.fixture(scope="session")
async def people(source: RealSource) -> People:
    await source.create_tables([("people", PEOPLE, ROWS), ("events", EVENTS, EVENT_ROWS)])
    model = source.model("people", PEOPLE)
    events = source.model("events", EVENTS)
    assert events.id is not None
    resolver = DictResolver(models={events.id: events})
    pro = resolver.add_audience(model, {"column": "plan", "op": "eq", "value": "pro"}, "pro")
    active_pro = resolver.add_audience(
        model,
        {
            "and": [
                {"audience": {"id": str(pro.id)}},
                {"column": "active", "op": "eq", "value": True},
            ]
        },
    )
    names = {"EVENTS": str(events.id), "PRO": str(pro.id), "ACTIVE_PRO": str(active_pro.id)}
    return People(model, resolver, names)


def col(column: str, op: str, *value: Any) -> dict[str, Any]:
    return {"column": column, "op": op, **({"value": value[0]} if value else {})}


def event(**body: Any) -> dict[str, Any]:
    return {"event": {"model_id": "EVENTS", "key": "customer_id", **body}}


PURCHASE = {"column": "kind", "op": "eq", "value": "purchase"}
CASES: list[tuple[str, dict[str, Any], set[int]]] = [
    ("empty filter", {}, ALL),
    ("eq is case-sensitive", col("name", "eq", "alice"), {2}),
    ("neq", col("name", "neq", "alice"), {1, 3, 4, 5, 6}),
    ("in", col("name", "in", ["Alice", "O'Brien", "nobody"]), {1, 4}),
    ("not_in", col("name", "not_in", ["Alice", "alice"]), {3, 4, 5, 6}),
    ("contains", col("name", "contains", "li"), {1, 2}),
    ("contains is case-sensitive", col("name", "contains", "LI"), set()),
    ("contains % literally", col("name", "contains", "%"), {3, 6}),
    ("contains _ literally", col("name", "contains", "_"), {3, 6}),
    ("contains unicode", col("name", "contains", "ë 👍"), {5}),
    ("contains a quote", col("name", "contains", "'"), {4}),
    ("contains empty", col("email", "contains", ""), {1, 2, 4, 5, 6}),
    ("starts_with", col("name", "starts_with", "A"), {1}),
    ("starts_with lower", col("name", "starts_with", "a"), {2}),
    ("starts_with %", col("name", "starts_with", "50%"), {6}),
    ("starts_with _", col("name", "starts_with", "Bob_"), {3}),
    ("ends_with", col("name", "ends_with", "_%"), {3}),
    ("ends_with emoji", col("name", "ends_with", "👍"), {5}),
    ("ends_with case", col("name", "ends_with", "ICE"), set()),
    ("ends_with longer than value", col("email", "ends_with", "x" * 40), set()),
    ("eq empty string", col("email", "eq", ""), {6}),
    ("is_null", col("email", "is_null"), {3}),
    ("is_not_null", col("email", "is_not_null"), {1, 2, 4, 5, 6}),
    ("number eq", col("score", "eq", 10), {1}),
    ("number eq float value", col("score", "eq", 10.0), {1}),
    ("number neq skips null", col("score", "neq", 10), {2, 3, 5, 6}),
    ("gt", col("score", "gt", 10), {2, 3}),
    ("gte", col("score", "gte", 10), {1, 2, 3}),
    ("lt", col("score", "lt", 0), {6}),
    ("lte", col("score", "lte", 0), {5, 6}),
    ("between inclusive", col("score", "between", [0, 20]), {1, 2, 5}),
    ("number in", col("score", "in", [0, 30]), {3, 5}),
    ("number not_in", col("score", "not_in", [0, 30]), {1, 2, 6}),
    ("float gt", col("ratio", "gt", 0.5), {2, 6}),
    ("float between", col("ratio", "between", [-3, 0]), {4, 5}),
    ("float eq", col("ratio", "eq", -2.25), {4}),
    ("boolean true", col("active", "eq", True), {1, 3, 6}),
    ("boolean false", col("active", "eq", False), {2, 5}),
    ("boolean neq", col("active", "neq", True), {2, 5}),
    ("boolean is_null", col("active", "is_null"), {4}),
    ("within_last_days excludes the future", col("signed_up", "within_last_days", 7), {1}),
    ("within_last_days 30", col("signed_up", "within_last_days", 30), {1, 2}),
    ("before", col("signed_up", "before", days_ago(30).isoformat()), {3, 6}),
    ("after", col("signed_up", "after", NOW.isoformat()), {5}),
    (
        "timestamp between",
        col("signed_up", "between", [days_ago(11).isoformat(), days_ago(1).isoformat()]),
        {1, 2},
    ),
    ("timestamp eq", col("signed_up", "eq", days_ago(10).isoformat()), {2}),
    (
        "timestamp eq in another zone",
        col("signed_up", "eq", days_ago(10).astimezone(timezone(timedelta(hours=-5))).isoformat()),
        {2},
    ),
    ("timestamp gt", col("signed_up", "gt", days_ago(10).isoformat()), {1, 5}),
    ("date eq", col("birthday", "eq", "2000-02-29"), {4}),
    ("date before", col("birthday", "before", "1986-01-01"), {2}),
    ("date after", col("birthday", "after", "1999-12-31"), {4, 6}),
    ("date between", col("birthday", "between", ["1990-01-01", "1999-12-31"]), {1, 5}),
    ("date gte", col("birthday", "gte", "1990-01-15"), {1, 4, 5, 6}),
    ("date lt", col("birthday", "lt", "1990-01-15"), {2}),
    ("date within_last_days", col("birthday", "within_last_days", 7), {6}),
    ("neq leaves nulls out", col("plan", "neq", "pro"), {2, 5, 6}),
    ("not keeps nulls", {"not": col("plan", "eq", "pro")}, {2, 4, 5, 6}),
    ("and", {"and": [col("active", "eq", True), col("score", "gte", 20)]}, {3}),
    ("or", {"or": [col("plan", "eq", "team"), col("name", "starts_with", "O")]}, {4, 5}),
    (
        "not or",
        {"not": {"or": [col("plan", "eq", "team"), col("name", "starts_with", "O")]}},
        {1, 2, 3, 6},
    ),
    (
        "nested",
        {
            "and": [
                {"or": [col("score", "gt", 15), col("ratio", "lt", 0)]},
                {"not": col("active", "eq", False)},
            ]
        },
        {3, 4},
    ),
    ("event count", event(where=PURCHASE, count={"op": "gte", "value": 2}), {1, 3}),
    ("event default count", event(where=PURCHASE), {1, 2, 3}),
    ("event window", event(where=PURCHASE, timestamp="at", within_days=7), {1, 3}),
    ("event none", event(count={"op": "eq", "value": 0}), {4, 5, 6}),
    ("event window only", event(timestamp="at", within_days=3), {1, 2, 3}),
    (
        "event where on a number",
        event(where=col("amount", "gte", 50), count={"op": "eq", "value": 2}),
        {3},
    ),
    (
        "event where tree",
        event(
            where={"and": [PURCHASE, {"not": col("amount", "lt", 5)}]},
            count={"op": "lt", "value": 2},
        ),
        {2, 4, 5, 6},
    ),
    ("not event", {"not": event(where=PURCHASE, count={"op": "gt", "value": 2})}, {1, 2, 4, 5, 6}),
    ("audience member", {"audience": {"id": "PRO", "member": True}}, {1, 3}),
    ("audience not member", {"audience": {"id": "PRO", "member": False}}, {2, 4, 5, 6}),
    ("audience of audience", {"audience": {"id": "ACTIVE_PRO"}}, {1, 3}),
    (
        "audience and column",
        {"and": [{"audience": {"id": "ACTIVE_PRO", "member": False}}, col("score", "gte", 0)]},
        {2, 5},
    ),
]


def _resolve(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, names) for v in node]
    return names.get(node, node) if isinstance(node, str) else node


@pytest.mark.parametrize(("case", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_operator(
    source: RealSource, people: People, case: str, raw: dict[str, Any], expected: set[int]
) -> None:
    query = await compile_audience(
        _resolve(raw, people.names), people.model, people.resolver, now=NOW
    )
    async with source.open() as connection:
        keys = await fetch_keys(connection, query.keys())
        count = (await connection.fetch(query.count())).rows[0][0]
        streamed = await collect(stream_members(connection, query, columns=[], batch_size=2))
    assert set(keys) == expected
    assert streamed == [(str(key), {"id": key}) for key in keys]
    assert keys == sorted(keys)
    assert count == len(expected)


def test_every_operator_is_covered() -> None:
    used = set()
    pending: list[Any] = [raw for _, raw, _ in CASES]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            used.add(node.get("op"))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    from app.sources.filter_ops import FilterOp

    assert {op.value for op in FilterOp} <= used


async def test_sqlite_reads_every_iso_8601_spelling(source_settings: Settings) -> None:
    path = source_settings.resolved_source_files_dir / "spellings.sqlite"
    spellings = [
        "2024-06-14 12:00:00",
        "2024-06-14T12:00:00",
        "2024-06-14T12:00:00Z",
        "2024-06-14T14:00:00+02:00",
        "2024-06-14 12:00:00.000",
        "2024-06-14T07:30:00-04:30",
    ]
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (id INTEGER, at DATETIME)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", enumerate(spellings, 1))
    connection.close()
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("at", ColumnType.timestamp)),
        table="t",
    )
    source = RealSource("sqlite", source_settings, "sqlite:///spellings.sqlite")
    async with source.open() as connection:
        for raw, expected in [
            (col("at", "eq", "2024-06-14T12:00:00Z"), set(range(1, 7))),
            (col("at", "after", "2024-06-14T11:59:59.999Z"), set(range(1, 7))),
            (col("at", "before", "2024-06-14T12:00:00.001+00:00"), set(range(1, 7))),
            (col("at", "within_last_days", 1), set(range(1, 7))),
            (col("at", "gt", "2024-06-14T12:00:00Z"), set()),
        ]:
            query = await compile_audience(raw, model, DictResolver(), now=NOW)
            assert set(await fetch_keys(connection, query.keys())) == expected, raw
