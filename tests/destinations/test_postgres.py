"""The PostgreSQL destination against a real database: values through their column types,
quoted identifiers, one transaction per batch, what `check()` verifies, SQLSTATE
classification (a real lock timeout is transient), the private-address guard, and no
password in any message."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from app.destinations.address_guard import allow_all, public_only
from app.destinations.base import (
    AccessDenied,
    Batch,
    Operation,
    Record,
    TerminalError,
    TransientError,
)
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.postgres import SPEC, PostgresConfig, PostgresConnector
from app.destinations.spec import BuildOptions
from app.validation import invalid_from
from tests.emulators.postgres import TABLE, PostgresEmulator

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
PASSWORD = "s3cret-Pass-w0rd"
ODD = (
    'CREATE SCHEMA crm; CREATE TABLE crm."Odd ""Name""" ("Member Key" bigint PRIMARY KEY, '
    '"E-mail" text, ltv numeric, seen_at timestamptz, tags jsonb, vip boolean, '
    "note text DEFAULT 'kept', shout text GENERATED ALWAYS AS (upper(\"E-mail\")) STORED)"
)


@pytest.fixture
def emulator() -> Iterator[PostgresEmulator]:
    emulator = PostgresEmulator()
    yield emulator
    emulator.close()


def connector_for(
    emulator: PostgresEmulator, table: str = TABLE, key: str = "id", **extra: Any
) -> PostgresConnector:
    policy = extra.pop("policy", allow_all)
    config = {"url": extra.pop("url", emulator.url), "table": table, "key_column": key}
    return PostgresConnector(config, BuildOptions(policy=policy), **extra)


def batch(operation: Operation, *records: Record) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


async def test_rows_reach_their_columns_through_the_column_types(
    emulator: PostgresEmulator,
) -> None:
    emulator.execute(ODD)
    connector = connector_for(emulator, 'crm.Odd "Name"', "Member Key")
    seen = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    first = {"E-mail": "a@example.com", "ltv": Decimal("12.50"), "seen_at": seen,
             "tags": {"tier": ["gold"]}, "vip": True}  # fmt: skip
    second = {"E-mail": "b@example.com", "ltv": 3.25, "seen_at": None, "tags": None, "vip": False}
    generated = re.escape("'shout' of crm.Odd \"Name\" is generated")
    try:
        await connector.check()
        added = await connector.send(batch(Operation.add, Record("7", first), Record("8", second)))
        assert added.accepted == ("7", "8") and not added.rejected
        changed = {"E-mail": "c@example.com", "ltv": None}
        await connector.send(batch(Operation.update, Record("8", changed)))
        await connector.send(batch(Operation.remove, Record("7", {"member_key": "7"})))
        with pytest.raises(TerminalError, match=generated):
            await connector.send(batch(Operation.add, Record("9", {"shout": "x"})))
    finally:
        await connector.close()
    [row] = emulator.fetch('SELECT * FROM crm."Odd ""Name"""')
    assert dict(row) == {
        "Member Key": 8,  # the member key "8" became a bigint
        "E-mail": "c@example.com",
        "ltv": None,  # a mapped null clears the column
        "seen_at": None,
        "tags": None,
        "vip": False,  # unmapped on the update: untouched
        "note": "kept",  # never mapped: its default stays
        "shout": "C@EXAMPLE.COM",
    }


async def test_values_keep_their_type_and_precision(emulator: PostgresEmulator) -> None:
    emulator.execute(ODD)
    connector = connector_for(emulator, 'crm.Odd "Name"', "Member Key")
    seen = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    fields = {"ltv": Decimal("12345678901234567890.125"), "seen_at": seen, "tags": {"n": [1, 2]}}
    try:
        await connector.send(batch(Operation.add, Record("1", fields)))
    finally:
        await connector.close()
    [row] = emulator.fetch('SELECT ltv, seen_at, tags::text AS tags FROM crm."Odd ""Name"""')
    assert row["ltv"] == Decimal("12345678901234567890.125") and row["seen_at"] == seen
    assert row["tags"] == '{"n": [1, 2]}'


async def test_check_names_the_problem_and_lists_the_columns(emulator: PostgresEmulator) -> None:
    emulator.execute(
        "CREATE TABLE plain (id text, email text); "
        "CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b)); "
        "CREATE VIEW people_view AS SELECT * FROM audience"
    )
    cases = [
        ("missing", "id", "no table 'missing'"),
        (TABLE, "member", "has no column 'member' (its columns: id, email, phone"),
        ("plain", "email", "'email' of public.plain is neither the primary key nor unique"),
        ("pair", "a", "'a' of public.pair is neither the primary key nor unique"),
        ("people_view", "id", "'people_view' is not a table"),
        ("other.audience", "id", "no table 'other.audience'"),
    ]
    for table, key, problem in cases:
        connector = connector_for(emulator, table, key)
        try:
            with pytest.raises(TerminalError) as refused:
                await connector.check()
            with pytest.raises(TerminalError):  # each batch after it too, without a query
                await connector.send(batch(Operation.add, Record("1", {})))
        finally:
            await connector.close()
        assert problem in str(refused.value), (table, key, refused.value)


async def test_hostile_names_are_identifiers_never_sql(emulator: PostgresEmulator) -> None:
    hostile_table = f'{TABLE}"; DROP TABLE {TABLE}; --'
    hostile_column = f'email") VALUES (1); DROP TABLE {TABLE}; --'
    connector = connector_for(emulator, hostile_table)
    try:
        with pytest.raises(TerminalError, match="no table"):
            await connector.check()
    finally:
        await connector.close()
    connector = connector_for(emulator, key=f"id; DROP TABLE {TABLE}")
    try:
        with pytest.raises(TerminalError, match="has no column"):
            await connector.check()
    finally:
        await connector.close()
    connector = connector_for(emulator)
    try:
        with pytest.raises(TerminalError) as refused:
            await connector.send(batch(Operation.add, Record("1", {hostile_column: "x"})))
        assert repr(hostile_column) in str(refused.value) and "its columns: id, email" in str(
            refused.value
        )
        assert (await connector.send(batch(Operation.add, Record("1", {"plan": "pro"})))).accepted
    finally:
        await connector.close()
    assert [dict(r) for r in emulator.fetch(f"SELECT id, plan FROM {TABLE}")] == [
        {"id": 1, "plan": "pro"}
    ]


async def test_a_batch_is_one_transaction_and_a_refused_row_is_isolated(
    emulator: PostgresEmulator,
) -> None:
    connector = connector_for(emulator)
    records = [Record(str(i), {"email": f"p{i}@example.com"}) for i in range(1, 9)]
    emulator.poison.add("5")
    try:
        with pytest.raises(TerminalError, match="member 5 is refused"):
            await connector.send(batch(Operation.add, *records))
        assert emulator.members() == {}  # nothing of the refused transaction stayed
        result = await deliver(connector, batch(Operation.add, *records), FAST)
    finally:
        await connector.close()
    assert [key for key, _ in result.rejected] == ["5"] and "check constraint" in str(
        result.rejected
    )
    assert set(emulator.members()) == {str(i) for i in range(1, 9) if i != 5}


async def test_a_whole_batch_of_the_largest_size_is_one_statement(
    emulator: PostgresEmulator,
) -> None:
    """10 000 rows of 7 columns are 70 000 values: one JSON parameter, not 70 000 binds
    (asyncpg takes at most 32 767)."""
    fields = {"email": "e@example.com", "phone": "+1", "first_name": "A", "last_name": "B"}
    fields |= {"plan": "pro", "ltv": 1.5}
    records = [Record(str(i), fields) for i in range(SPEC.max_batch_size)]
    connector = connector_for(emulator)
    try:
        result = await connector.send(batch(Operation.add, *records))
    finally:
        await connector.close()
    assert len(result.accepted) == SPEC.max_batch_size
    [transaction] = emulator.log
    assert transaction.items == SPEC.max_batch_size and transaction.status == 200


async def test_a_lock_timeout_is_transient_and_the_batch_lands_after_it(
    emulator: PostgresEmulator,
) -> None:
    """A real transient condition: another session holds the table locked."""
    connector = connector_for(emulator, lock_timeout=0.2)
    holder = await asyncpg.connect(emulator.url)
    try:
        await connector.check()
        locked = holder.transaction()
        await locked.start()
        await holder.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TransientError, match="55P03"):
            await connector.send(batch(Operation.add, Record("1", {"plan": "pro"})))
        await locked.rollback()
        assert (await connector.send(batch(Operation.add, Record("1", {"plan": "pro"})))).accepted
    finally:
        await holder.close()
        await connector.close()
    assert set(emulator.members()) == {"1"}


async def test_private_hosts_are_refused_unless_allowed(emulator: PostgresEmulator) -> None:
    connector = connector_for(emulator, policy=public_only)
    try:
        with pytest.raises(TerminalError, match="non-public address"):
            await connector.check()
    finally:
        await connector.close()


@pytest.mark.parametrize(
    ("user", "database", "refusal"),
    [("signalsmith_nobody", None, AccessDenied), ("postgres", "missing_db", AccessDenied)],
)
async def test_refusals_never_carry_the_password(
    emulator: PostgresEmulator, user: str, database: str | None, refusal: type[Exception]
) -> None:
    url = f"postgresql://{user}:{PASSWORD}@{emulator.host}:{emulator.port}/"
    url += database or emulator.database
    connector = connector_for(emulator, url=url)
    try:
        with pytest.raises(refusal) as refused:
            await connector.check()
    finally:
        await connector.close()
    assert PASSWORD not in str(refused.value) and url not in str(refused.value)


async def test_an_unreachable_server_is_transient(emulator: PostgresEmulator) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/{emulator.database}"
    connector = connector_for(emulator, url=url)
    try:
        with pytest.raises(TransientError) as failed:
            await connector.send(batch(Operation.add, Record("1", {})))
    finally:
        await connector.close()
    assert PASSWORD not in str(failed.value)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"url": f"mysql://u:{PASSWORD}@db/x"}, "must be a postgresql:// URL"),
        ({"url": f"postgresql://u:{PASSWORD}@/x"}, "one database host"),
        ({"url": f"postgresql://u:{PASSWORD}@db"}, "must name the database"),
        ({"url": f"postgresql://u:{PASSWORD}@db/x?host=/tmp"}, "unsupported URL parameter"),
        ({"url": f"postgresql://u:{PASSWORD}@db/x?ssl=maybe"}, "ssl must be one of"),
        ({"table": "a.b.c"}, "schema.table"),
        ({"table": ".b"}, "schema.table"),
    ],
)
def test_the_config_refuses_what_cannot_work_without_echoing_it(
    config: dict[str, str], problem: str
) -> None:
    full = {"url": f"postgresql://u:{PASSWORD}@db/x", "table": "t", "key_column": "id", **config}
    with pytest.raises(ValidationError) as refused:
        PostgresConfig.model_validate(full)
    answer = invalid_from(refused.value, prefix="config")  # what the APIs report
    assert problem in answer.message and PASSWORD not in str(answer.message)
    with pytest.raises(TerminalError) as unusable:  # a stored config that no longer validates
        PostgresConnector(full, BuildOptions(policy=allow_all))
    assert problem in str(unusable.value) and PASSWORD not in str(unusable.value)


def test_the_declaration() -> None:
    assert SPEC.max_batch_size == 10_000 and SPEC.default_batch_size == 1_000
    assert SPEC.rate_limit is None and SPEC.custom_fields and not SPEC.needs_identifier
    assert SPEC.public_config_fields == {"table", "key_column"}
    assert {e.value for e in SPEC.on_exit} == {"remove"}


async def test_the_connection_does_not_outlive_close(emulator: PostgresEmulator) -> None:
    connector = connector_for(emulator)
    await connector.check()
    await connector.close()
    await asyncio.sleep(0)
    [row] = emulator.fetch(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 "
        "AND application_name = 'signalsmith'",
        emulator.database,
    )
    assert row["n"] == 0
