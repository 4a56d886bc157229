"""Bad filters are 422s that name the condition's path and the problem; nothing reaches SQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from app.errors import InvalidInput
from app.sources.filter_ops import MAX_LIST
from app.sources.filters import compile_audience, referenced_ids
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from tests.sources.support import DictResolver

SOURCE = uuid.uuid4()


def model(table: str = "people", /, **types: ColumnType) -> ModelSpec:
    columns = {"id": ColumnType.number, **types}
    return ModelSpec(
        primary_key="id",
        columns=tuple(ColumnSpec(n, t) for n, t in columns.items()),
        table=table,
        id=uuid.uuid4(),
        source_id=SOURCE,
        name=table,
    )


PEOPLE = model(
    name=ColumnType.string,
    score=ColumnType.number,
    active=ColumnType.boolean,
    seen=ColumnType.timestamp,
    born=ColumnType.date,
    blob=ColumnType.unknown,
)
EVENTS = model(
    "events", customer_id=ColumnType.number, kind=ColumnType.string, at=ColumnType.timestamp
)
TEXT_KEYED_EVENTS = model("visits", customer_id=ColumnType.string, at=ColumnType.timestamp)


def resolver() -> DictResolver:
    elsewhere = ModelSpec(**{**EVENTS.__dict__, "id": uuid.uuid4(), "source_id": uuid.uuid4()})
    bare = ModelSpec(**{**EVENTS.__dict__, "id": uuid.uuid4(), "columns": ()})
    models = {m.id: m for m in (EVENTS, TEXT_KEYED_EVENTS, elsewhere, bare)}
    assert all(key is not None for key in models)
    return DictResolver(models={k: v for k, v in models.items() if k is not None})


async def problems(
    raw: Any, resolver_: DictResolver | None = None, **options: Any
) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        await compile_audience(raw, PEOPLE, resolver_ or resolver(), **options)
    assert caught.value.http_status == 422
    return [(detail.field, detail.message) for detail in caught.value.details]


def leaf(column: str, op: str, *value: Any) -> dict[str, Any]:
    return {"column": column, "op": op, **({"value": value[0]} if value else {})}


OK = leaf("score", "gt", 1)
BAD_LEAVES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown column", leaf("nope", "eq", 1), "unknown column 'nope'"),
    ("column not a string", {"column": ["name"], "op": "eq", "value": 1}, "unknown column"),
    ("unknown operator", leaf("name", "like", "a%"), "unknown operator 'like'"),
    ("operator not a string", {"column": "name", "op": ["eq"], "value": 1}, "unknown operator"),
    (
        "string op on a number",
        leaf("score", "contains", "1"),
        "contains does not apply to 'score', a number",
    ),
    ("ordering a string", leaf("name", "gt", "a"), "gt does not apply to 'name', a string"),
    ("ordering a boolean", leaf("active", "lt", True), "does not apply to 'active', a boolean"),
    ("days on a number", leaf("score", "within_last_days", 3), "does not apply"),
    ("unknown type", leaf("blob", "eq", "x"), "does not apply to 'blob', a unknown"),
    ("number for a string", leaf("name", "eq", 5), "the value is a string"),
    ("string for a number", leaf("score", "eq", "5"), "the value is a number"),
    ("boolean for a number", leaf("score", "eq", True), "not a boolean"),
    ("string for a boolean", leaf("active", "eq", "true"), "the value is a boolean"),
    ("bad timestamp", leaf("seen", "after", "yesterday"), "not an ISO-8601 timestamp"),
    ("number for a timestamp", leaf("seen", "after", 1700000000), "ISO-8601 timestamp string"),
    ("bad date", leaf("born", "eq", "2024-13-01"), "not a date"),
    ("null value", leaf("name", "eq", None), "use is_null"),
    ("missing value", leaf("name", "eq"), "use is_null"),
    ("empty in", leaf("name", "in", []), "non-empty list"),
    ("in not a list", leaf("name", "in", "a"), "non-empty list"),
    ("huge in", leaf("score", "in", list(range(MAX_LIST + 1))), "non-empty list"),
    ("bad item in", leaf("score", "not_in", [1, "2"]), "the value is a number"),
    ("between one", leaf("score", "between", [1]), "[low, high]"),
    ("between three", leaf("score", "between", [1, 2, 3]), "[low, high]"),
    ("between scalar", leaf("score", "between", 5), "[low, high]"),
    ("between wrong type", leaf("born", "between", ["2020-01-01", 5]), "date string"),
    ("is_null with a value", leaf("name", "is_null", "x"), "takes no value"),
    ("zero days", leaf("seen", "within_last_days", 0), "whole number of days"),
    ("fractional days", leaf("seen", "within_last_days", 1.5), "whole number of days"),
    ("boolean days", leaf("seen", "within_last_days", True), "whole number of days"),
    ("NUL character", leaf("name", "eq", "a\x00b"), "NUL"),
    ("lone surrogate", leaf("name", "contains", "\ud800"), "not valid Unicode"),
    ("too big", leaf("score", "eq", 2**70), "64-bit"),
    ("not finite", leaf("score", "gt", float("nan")), "not finite"),
    ("infinite", leaf("score", "gt", float("inf")), "not finite"),
    ("extra key", {**OK, "values": [1]}, "unexpected keys ['values']"),
]


@pytest.mark.parametrize(("case", "bad", "message"), BAD_LEAVES, ids=[c[0] for c in BAD_LEAVES])
async def test_a_bad_condition_is_named_by_its_path(
    case: str, bad: dict[str, Any], message: str
) -> None:
    found = await problems({"and": [OK, {"or": [bad, OK]}]})
    assert len(found) == 1
    field, text = found[0]
    assert field == "filter.and[1].or[0]"
    assert message in text


MALFORMED: list[tuple[str, Any, str, str]] = [
    ("not an object", ["a"], "filter", "exactly one of"),
    ("a string", "everyone", "filter", "exactly one of"),
    ("no kind", {"colum": "name"}, "filter", "exactly one of"),
    ("two kinds", {"and": [OK], "or": [OK]}, "filter", "exactly one of"),
    ("empty and", {"and": []}, "filter", "non-empty list"),
    ("and of an object", {"and": {"x": OK}}, "filter", "non-empty list"),
    ("nested empty", {"or": [OK, {}]}, "filter.or[1]", "exactly one of"),
    ("not with extra keys", {"not": OK, "why": 1}, "filter", "unexpected keys"),
    ("not of a list", {"not": [OK]}, "filter.not", "exactly one of"),
    ("null node", {"and": [None]}, "filter.and[0]", "exactly one of"),
]


@pytest.mark.parametrize(
    ("case", "raw", "field", "message"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
async def test_malformed_trees(case: str, raw: Any, field: str, message: str) -> None:
    [(found_field, text)] = await problems(raw)
    assert found_field == field
    assert message in text


async def test_every_problem_is_reported() -> None:
    found = await problems({"and": [leaf("nope", "eq", 1), OK, {"not": leaf("score", "eq", "x")}]})
    assert [field for field, _ in found] == ["filter.and[0]", "filter.and[2].not"]


async def test_a_very_deep_tree_is_a_422_not_a_crash() -> None:
    raw: Any = OK
    for _ in range(5000):
        raw = {"not": raw}
    [(field, message)] = await problems(raw)
    assert field.startswith("filter.not.not")
    assert "too large" in message


def event(**body: Any) -> dict[str, Any]:
    return {"event": {"model_id": str(EVENTS.id), "key": "customer_id", **body}}


async def test_a_valid_event_compiles() -> None:
    await compile_audience(
        event(timestamp="at", within_days=3, where=leaf("kind", "eq", "x")), PEOPLE, resolver()
    )


def other_model(kind: str, r: DictResolver) -> str:
    for model_id, spec in r.models.items():
        if kind == "elsewhere" and spec.source_id != SOURCE:
            return str(model_id)
        if kind == "bare" and not spec.columns:
            return str(model_id)
    raise AssertionError(kind)


EVENT_PROBLEMS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown model", {"model_id": str(uuid.uuid4())}, "filter.event", "no model"),
    ("model id not a uuid", {"model_id": "events"}, "filter.event", "no model 'events'"),
    ("unknown key", {"key": "who"}, "filter.event", "no key column 'who'"),
    (
        "key of another type",
        {"model_id": str(TEXT_KEYED_EVENTS.id)},
        "filter.event",
        "is a string; the member key is a number",
    ),
    ("timestamp alone", {"timestamp": "at"}, "filter.event", "together"),
    ("window alone", {"within_days": 3}, "filter.event", "together"),
    (
        "timestamp not a time",
        {"timestamp": "kind", "within_days": 3},
        "filter.event",
        "not a timestamp",
    ),
    ("bad window", {"timestamp": "at", "within_days": 0}, "filter.event", "within_days"),
    ("bad count op", {"count": {"op": "contains", "value": 1}}, "filter.event", "count is"),
    ("negative count", {"count": {"op": "gte", "value": -1}}, "filter.event", "count is"),
    ("count not an object", {"count": 2}, "filter.event", "count is"),
    ("unknown key in event", {"since": 3}, "filter.event", "an event condition is an object"),
    (
        "bad where",
        {"where": leaf("amount", "gt", 1)},
        "filter.event.where",
        "unknown column 'amount'",
    ),
    (
        "event inside where",
        {"where": {"event": {}}},
        "filter.event.where",
        "column conditions only",
    ),
    (
        "audience inside where",
        {"where": {"or": [{"audience": {"id": str(uuid.uuid4())}}]}},
        "filter.event.where.or[0]",
        "column conditions only",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "field", "message"), EVENT_PROBLEMS, ids=[c[0] for c in EVENT_PROBLEMS]
)
async def test_event_problems(case: str, body: dict[str, Any], field: str, message: str) -> None:
    found = await problems(event(**body))
    assert any(f == field and message in m for f, m in found), found


@pytest.mark.parametrize(
    ("kind", "message"), [("elsewhere", "another source"), ("bare", "no introspected columns")]
)
async def test_event_models_must_be_usable(kind: str, message: str) -> None:
    r = resolver()
    [(field, text)] = await problems(event(model_id=other_model(kind, r)), r)
    assert field == "filter.event"
    assert message in text


def ref(audience_id: uuid.UUID, member: object = True) -> dict[str, Any]:
    return {"audience": {"id": str(audience_id), "member": member}}


async def test_audience_reference_problems() -> None:
    r = resolver()
    elsewhere = r.add_audience(EVENTS, {}, "events people")
    broken = r.add_audience(PEOPLE, {"column": "gone", "op": "is_null"}, "broken")
    ok = r.add_audience(PEOPLE, OK, "ok")
    found = await problems(
        {
            "or": [
                ref(uuid.uuid4()),
                ref(elsewhere.id),
                ref(broken.id),
                ref(ok.id, "yes"),
                {"audience": {"member": True}},
            ]
        },
        r,
    )
    assert found == [
        ("filter.or[0].audience", found[0][1]),
        (
            "filter.or[1].audience",
            f"audience 'events people' ({elsewhere.id}) is on another model",
        ),
        ("filter.or[2].audience", found[2][1]),
        ("filter.or[3].audience", "member is true or false"),
        ("filter.or[4].audience", "an audience condition is {id, member: true | false}"),
    ]
    assert "no audience" in found[0][1]
    assert "'broken'" in found[2][1] and "unknown column 'gone'" in found[2][1]


async def test_a_reference_to_itself_is_a_cycle() -> None:
    r = resolver()
    me = r.add_audience(PEOPLE, {}, "me")
    [(field, message)] = await problems({"and": [OK, ref(me.id)]}, r, audience=me)
    assert field == "filter.and[1].audience"
    assert message == f"audiences refer to each other in a cycle: 'me' ({me.id}) → 'me' ({me.id})"


async def test_a_longer_cycle_is_named_whole() -> None:
    r = resolver()
    a = r.add_audience(PEOPLE, {}, "A")
    b = r.add_audience(PEOPLE, ref(a.id), "B")
    c = r.add_audience(PEOPLE, {"not": ref(b.id)}, "C")
    # A is being changed to refer to C: A → C → B → A.
    [(field, message)] = await problems({"or": [OK, ref(c.id, False)]}, r, audience=a)
    assert field == "filter.or[1].audience"
    assert message.endswith(f"'A' ({a.id}) → 'C' ({c.id}) → 'B' ({b.id}) → 'A' ({a.id})")


async def test_a_cycle_among_referenced_audiences_is_found_from_outside() -> None:
    r = resolver()
    a = r.add_audience(PEOPLE, {}, "A")
    b = r.add_audience(PEOPLE, ref(a.id), "B")
    r.audiences[a.id] = type(a)(a.id, a.model_id, ref(b.id), "A")
    [(field, message)] = await problems(ref(a.id), r)
    assert field == "filter.audience"
    assert f"'A' ({a.id}) → 'B' ({b.id}) → 'A' ({a.id})" in message


async def test_a_diamond_is_not_a_cycle() -> None:
    r = resolver()
    base = r.add_audience(PEOPLE, OK, "base")
    left = r.add_audience(PEOPLE, ref(base.id), "left")
    right = r.add_audience(PEOPLE, ref(base.id, False), "right")
    await compile_audience({"or": [ref(left.id), ref(right.id)]}, PEOPLE, r)


async def test_the_model_must_be_introspected_and_keyed() -> None:
    bare = ModelSpec(primary_key="id", columns=(), table="t")
    with pytest.raises(InvalidInput) as caught:
        await compile_audience({}, bare, resolver())
    assert caught.value.details[0].field == "model_id"
    unkeyed = ModelSpec(primary_key="pk", columns=PEOPLE.columns, table="t")
    with pytest.raises(InvalidInput) as caught:
        await compile_audience({}, unkeyed, resolver())
    assert caught.value.details[0].field == "primary_key"


def test_referenced_ids_finds_audiences_and_event_models() -> None:
    a, m = uuid.uuid4(), uuid.uuid4()
    raw = {"and": [{"not": ref(a)}, {"or": [event(model_id=str(m)), {"audience": {"id": "junk"}}]}]}
    assert referenced_ids(raw) == ({a}, {m})
