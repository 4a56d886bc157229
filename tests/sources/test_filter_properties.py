"""Random filter trees over random rows: each dialect's SQL gives exactly the membership of the
Python reference evaluator (`reference.py`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sources.filters import compile_audience
from app.sources.model import ColumnType
from tests.sources.reference import World, members
from tests.sources.support import KINDS, NOW, DictResolver, RealSource, fetch_keys

PEOPLE = [
    ("id", "int"),
    ("name", "ci_text"),
    ("plan", "text"),
    ("score", "int"),
    ("ratio", "float"),
    ("active", "bool"),
    ("seen", "timestamp"),
    ("born", "date"),
]
EVENTS = [("customer_id", "int"), ("kind", "text"), ("at", "timestamp"), ("amount", "int")]
OPS: dict[ColumnType, list[str]] = {
    ColumnType.string: ["eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with"],
    ColumnType.number: ["eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "not_in"],
    ColumnType.boolean: ["eq", "neq"],
    ColumnType.timestamp: [
        "eq",
        "neq",
        "gt",
        "lte",
        "between",
        "before",
        "after",
        "within_last_days",
    ],
    ColumnType.date: ["eq", "gte", "lt", "between", "before", "after", "within_last_days"],
}
TEXT = st.text(alphabet="aAbB%_'\"\\é👍 ", max_size=4)
RATIOS = [-1.5, -0.5, 0.0, 0.25, 1.0, 2.5]
MINUTES = st.integers(-90 * 24 * 60, 5 * 24 * 60)
BORN = st.dates(date(2024, 3, 1), date(2024, 6, 20))
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))]


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


PERSON = st.tuples(
    nullable(TEXT),
    nullable(st.sampled_from(["pro", "Pro", "free", ""])),
    nullable(st.integers(-3, 3)),
    nullable(st.sampled_from(RATIOS)),
    nullable(st.booleans()),
    nullable(MINUTES.map(lambda m: NOW + timedelta(minutes=m))),
    nullable(BORN),
)
EVENT = st.tuples(
    st.integers(1, 14),
    nullable(st.sampled_from(["buy", "Buy", "view"])),
    nullable(MINUTES.map(lambda m: NOW + timedelta(minutes=m))),
    nullable(st.integers(0, 5)),
)


class TreeDrawer:
    """Draws filter trees whose values often hit the data (pools of the values present)."""

    def __init__(
        self, data: st.DataObject, rows: list[dict[str, Any]], events: list[dict[str, Any]]
    ):
        self.data = data
        self.pools = {name: [r[name] for r in rows if r[name] is not None] for name, _ in PEOPLE}
        self.event_pools = {
            name: [e[name] for e in events if e[name] is not None] for name, _ in EVENTS
        }
        self.audiences: list[str] = []

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)

    def tree(
        self, depth: int = 0, *, columns: list[tuple[str, str]] = PEOPLE, in_event: bool = False
    ) -> dict[str, Any]:
        kinds = ["leaf", "leaf", "leaf"]
        if depth < 3:
            kinds += ["and", "or", "not"]
        if not in_event:
            kinds += ["event"] + (["audience"] if self.audiences else [])
        kind = self.draw(st.sampled_from(kinds))
        if kind in ("and", "or"):
            size = self.draw(st.integers(1, 3))
            return {
                kind: [
                    self.tree(depth + 1, columns=columns, in_event=in_event) for _ in range(size)
                ]
            }
        if kind == "not":
            return {"not": self.tree(depth + 1, columns=columns, in_event=in_event)}
        if kind == "audience":
            return {
                "audience": {
                    "id": self.draw(st.sampled_from(self.audiences)),
                    "member": self.draw(st.booleans()),
                }
            }
        if kind == "event":
            return {"event": self.event()}
        return self.leaf(columns, self.event_pools if in_event else self.pools)

    def event(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model_id": "EVENTS", "key": "customer_id"}
        if self.draw(st.booleans()):
            body.update(timestamp="at", within_days=self.draw(st.integers(1, 60)))
        if self.draw(st.booleans()):
            body["where"] = self.tree(2, columns=EVENTS[1:], in_event=True)
        if self.draw(st.booleans()):
            body["count"] = {
                "op": self.draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"])),
                "value": self.draw(st.integers(0, 3)),
            }
        return body

    def leaf(self, columns: list[tuple[str, str]], pools: dict[str, list[Any]]) -> dict[str, Any]:
        name, kind = self.draw(st.sampled_from([c for c in columns if c[0] != "id"]))
        column_type = KINDS[kind][0]
        op = self.draw(st.sampled_from([*OPS[column_type], "is_null", "is_not_null"]))
        if op in ("is_null", "is_not_null"):
            return {"column": name, "op": op}
        value = self.value(column_type, kind, op, pools[name])
        return {"column": name, "op": op, "value": value}

    def value(self, column_type: ColumnType, kind: str, op: str, pool: list[Any]) -> Any:
        if op == "within_last_days":
            return self.draw(st.integers(1, 60))
        if op in ("in", "not_in"):
            return [
                self.scalar(column_type, kind, pool) for _ in range(self.draw(st.integers(1, 3)))
            ]
        if op == "between":
            return [self.scalar(column_type, kind, pool), self.scalar(column_type, kind, pool)]
        return self.scalar(column_type, kind, pool)

    def scalar(self, column_type: ColumnType, kind: str, pool: list[Any]) -> Any:
        fresh: st.SearchStrategy[Any] = {
            ColumnType.string: TEXT,
            ColumnType.number: st.sampled_from(RATIOS) if kind == "float" else st.integers(-4, 4),
            ColumnType.boolean: st.booleans(),
            ColumnType.timestamp: MINUTES.map(lambda m: NOW + timedelta(minutes=m)),
            ColumnType.date: BORN,
        }[column_type]
        value = self.draw(st.sampled_from(pool) if pool and self.draw(st.booleans()) else fresh)
        if column_type is ColumnType.string and pool and self.draw(st.booleans()):
            start = self.draw(st.integers(0, 3))
            value = value[start : start + self.draw(st.integers(0, 3))]  # a piece of a value
        if column_type is ColumnType.timestamp:
            return value.astimezone(self.draw(st.sampled_from(ZONES))).isoformat()
        if column_type is ColumnType.date:
            return value.isoformat()
        return value


def _resolve(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, names) for v in node]
    return names.get(node, node) if isinstance(node, str) else node


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    people=st.lists(PERSON, max_size=12),
    events=st.lists(EVENT, max_size=16),
    data=st.data(),
)
async def test_random_filters_match_the_reference(
    source: RealSource,
    people: list[tuple[Any, ...]],
    events: list[tuple[Any, ...]],
    data: st.DataObject,
) -> None:
    rows = [(index + 1, *person) for index, person in enumerate(people)]
    suffix = uuid.uuid4().hex[:12]
    await source.create_tables([(f"p{suffix}", PEOPLE, rows), (f"e{suffix}", EVENTS, events)])
    model = source.model(f"p{suffix}", PEOPLE)
    event_model = source.model(f"e{suffix}", EVENTS)
    assert event_model.id is not None
    resolver = DictResolver(models={event_model.id: event_model})

    dict_rows = [dict(zip([c for c, _ in PEOPLE], row, strict=True)) for row in rows]
    dict_events = [dict(zip([c for c, _ in EVENTS], row, strict=True)) for row in events]
    drawer = TreeDrawer(data, dict_rows, dict_events)
    world = World(
        now=NOW,
        types={c: KINDS[k][0].value for c, k in PEOPLE},
        event_types={c: KINDS[k][0].value for c, k in EVENTS},
        events=dict_events,
    )
    names = {"EVENTS": str(event_model.id)}
    for _ in range(data.draw(st.integers(0, 2))):
        raw = _resolve(drawer.tree(1), names)
        spec = resolver.add_audience(model, raw)
        world.audiences[str(spec.id)] = raw
        drawer.audiences.append(str(spec.id))
    trees = [_resolve(drawer.tree(), names) for _ in range(3)]

    async with source.open() as connection:
        for tree in trees:
            query = await compile_audience(tree, model, resolver, now=NOW)
            found = await fetch_keys(connection, query.keys())
            assert sorted(found) == found, tree
            assert set(found) == members(tree, dict_rows, world), tree
