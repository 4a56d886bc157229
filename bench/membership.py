"""Membership extraction from PostgreSQL: the membership stream beside the floor, `COPY (the
same compiled query) TO STDOUT` into nothing, measured in the same run (issue 3, Benchmark).

    python -m bench.membership --members 1000000 [--repeat 3] [--json]

Creates its own database on the server (`--url`, default `$SIGNALSMITH_BENCH_POSTGRES_URL` or
postgres@127.0.0.1:5432), loads customers with `generate_series`, introspects the model,
compiles a filter with the engine's compiler, times each way best-of-`--repeat`, and drops the
database at the end whatever happens. See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.sql.compiler import SQLCompiler

from app.settings import Settings
from app.sources.connection import SourceConnection, open_source
from app.sources.filters import AudienceQuery, compile_audience
from app.sources.introspect import describe_model
from app.sources.membership import DEFAULT_BATCH, stream_member_batches, stream_members
from app.sources.model import ModelSpec
from app.sources.postgres_copy import inline_statement
from models.enums import SourceType

DEFAULT_URL = os.environ.get(
    "SIGNALSMITH_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
#: The filter's countries (8 of the 10 loaded) and its lifetime value threshold.
COUNTRIES = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "SE"]
OTHER_COUNTRIES = ["BR", "JP"]
MIN_VALUE = 25
PLANS = ["free", "starter", "pro", "enterprise"]
FILTER: dict[str, Any] = {
    "and": [
        {"column": "lifetime_value", "op": "gte", "value": MIN_VALUE},
        {"column": "country", "op": "in", "value": COUNTRIES},
    ]
}
#: Every fifth row fails the filter, alternately on its country and on its lifetime value, so
#: exactly `--members` of `rows_for(members)` rows match (80 % selectivity).
LOAD_SQL = """
INSERT INTO customers (id, email, country, lifetime_value, plan, created_at)
SELECT i,
       'customer' || i || '@example.com',
       CASE WHEN i % 10 = 0 THEN ($1::text[])[1 + (i / 10) % 2]
            ELSE ($2::text[])[1 + (i * 7) % 8] END,
       CASE WHEN i % 10 = 5 THEN ((i * 7919) % 2500) / 100.0
            ELSE $3 + ((i * 7919) % 500000) / 100.0 END,
       ($4::text[])[1 + (i * 13) % 4],
       timestamptz '2020-01-01 00:00:00+00' + (i * 97) * interval '1 second'
FROM generate_series(1, $5::bigint) AS i
"""
SCHEMA_SQL = """
CREATE TABLE customers (
    id bigint NOT NULL,
    email text NOT NULL,
    country text NOT NULL,
    lifetime_value numeric(12, 2) NOT NULL,
    plan text NOT NULL,
    created_at timestamptz NOT NULL
)
"""


def rows_for(members: int) -> int:
    """The table size at which exactly `members` rows match (one in five does not)."""
    return members + members // 4 + (1 if members % 4 else 0) if members else 0


@dataclass
class Sample:
    """One run of one way: wall seconds, members seen, this process's and the server
    backend's CPU seconds (None when the server's /proc is not ours to read), peak RSS growth."""

    seconds: float
    members: int
    client_cpu: float
    server_cpu: float | None
    rss_delta: int


@dataclass
class Timing:
    """Every run of one way; the figures reported are the best (least) of the runs."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(sample.seconds for sample in self.samples)

    @property
    def members(self) -> int:
        return self.samples[0].members

    def as_json(self) -> dict[str, Any]:
        servers = [s.server_cpu for s in self.samples if s.server_cpu is not None]
        return {
            "seconds": round(self.best, 4),
            "runs": [round(sample.seconds, 4) for sample in self.samples],
            "members": self.members,
            "members_per_second": round(self.members / self.best) if self.best else None,
            "client_cpu_seconds": round(min(s.client_cpu for s in self.samples), 3),
            "server_cpu_seconds": round(min(servers), 3) if servers else None,
            "peak_rss_delta_mb": round(max(s.rss_delta for s in self.samples) / 1e6, 1),
        }


class Meter:
    """Wall time, CPU time of this process and of the server backend, and resident set size
    (sampled by `sample()` while a way runs, from /proc or getrusage's peak)."""

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, backend_pid: int | None) -> None:
        self.backend_pid = backend_pid
        self.rss_start = self.peak = self.rss()
        self.server_start = self.server_cpu()
        self.cpu_start = time.process_time()
        self.started = time.perf_counter()

    def rss(self) -> int:
        try:
            with open("/proc/self/statm", "rb") as statm:
                return int(statm.read().split()[1]) * self.PAGE
        except OSError:
            scale = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def server_cpu(self) -> float | None:
        """The backend's user + system CPU seconds, when it runs on this machine."""
        if self.backend_pid is None:
            return None
        try:
            with open(f"/proc/{self.backend_pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.TICK  # utime, stime

    def sample(self) -> None:
        self.peak = max(self.peak, self.rss())

    def stop(self, members: int) -> Sample:
        seconds = time.perf_counter() - self.started
        client = time.process_time() - self.cpu_start
        self.sample()
        server_end = self.server_cpu()
        server = None
        if self.server_start is not None and server_end is not None:
            server = server_end - self.server_start
        return Sample(seconds, members, client, server, self.peak - self.rss_start)


def local_backend(pid: int, url: str) -> int | None:
    """`pid` when the server runs on this machine (so its CPU time can be read), else None."""
    host = make_url(url).host or "localhost"
    local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("/")
    return pid if local and os.path.exists(f"/proc/{pid}/stat") else None


@asynccontextmanager
async def bench_database(admin_url: str) -> AsyncIterator[str]:
    """A database of our own on the server, dropped on the way out whatever happened."""
    name = f"signalsmith_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def load(url: str, rows: int) -> float:
    started = time.perf_counter()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(SCHEMA_SQL)
        await connection.execute(LOAD_SQL, OTHER_COUNTRIES, COUNTRIES, MIN_VALUE, PLANS, rows)
        await connection.execute("ALTER TABLE customers ADD PRIMARY KEY (id)")
        await connection.execute("VACUUM (ANALYZE) customers")
    finally:
        await connection.close()
    return time.perf_counter() - started


def copy_sql(query: AudienceQuery) -> str:
    """The statement the stream copies: the audience query with its values inlined, exactly as
    the stream's COPY sends it (asyncpg's `copy_from_query` wraps it in `COPY (…) TO STDOUT`)."""
    sql = inline_statement(query.members(), PGDialect_asyncpg())
    if sql is None:
        raise AssertionError("the benchmark's filter should inline")
    return sql


def driver_statement(query: AudienceQuery) -> tuple[str, list[Any]]:
    """The stream's statement as asyncpg takes it: `$n` placeholders and their values."""
    dialect = PGDialect_asyncpg()
    compiled = query.members().compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    values = compiled.construct_params()
    arguments = []
    for name in compiled.positiontup or ():
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        arguments.append(process(values[name]) if process else values[name])
    return compiled.string, arguments


async def time_floor(url: str, sql: str) -> Sample:
    """`COPY … TO STDOUT` into a callable that discards (counting lines to check the size)."""
    connection = await asyncpg.connect(url)
    lines = 0

    async def discard(chunk: bytes) -> None:
        nonlocal lines
        lines += chunk.count(b"\n")

    try:
        meter = Meter(local_backend(connection.get_server_pid(), url))
        await connection.copy_from_query(sql, output=discard)
        return meter.stop(lines)
    finally:
        await connection.close()


async def time_driver(url: str, sql: str, args: list[Any], batch: int) -> Sample:
    """asyncpg alone: the same statement through a cursor, Records decoded and dropped."""
    connection = await asyncpg.connect(url)
    count = 0
    try:
        meter = Meter(local_backend(connection.get_server_pid(), url))
        async with connection.transaction(readonly=True):
            cursor = await connection.cursor(sql, *args)
            while rows := await cursor.fetch(batch):
                count += len(rows)
                meter.sample()
        return meter.stop(count)
    finally:
        await connection.close()


class _ThroughTheCursor:
    """A source connection without its COPY path: the membership stream as it reads a result
    that COPY cannot (an array column, say), through asyncpg's cursor."""

    def __init__(self, connection: SourceConnection) -> None:
        self.connection = connection

    async def column_batches(self, statement: sa.Select[Any], **options: Any) -> None:
        return None

    def stream(
        self, statement: sa.Select[Any], *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        return self.connection.stream(statement, batch_size=batch_size, field=field)


async def time_stream(
    settings: Settings,
    url: str,
    query: AudienceQuery,
    batch: int,
    *,
    batches: bool,
    cursor: bool = False,
) -> Sample:
    """The engine's stream, every member consumed (its key and its row touched); with
    `cursor`, through the cursor instead of COPY."""
    count = 0
    async with open_source(settings, SourceType.postgres, url) as source:
        pid = (await source.fetch(sa.select(sa.func.pg_backend_pid()))).rows[0][0]
        connection = cast(SourceConnection, _ThroughTheCursor(source)) if cursor else source
        meter = Meter(local_backend(int(pid), url))
        if batches:
            async with aclosing(
                stream_member_batches(connection, query, batch_size=batch)
            ) as stream:
                async for members in stream:
                    for key, row in members:
                        if key is None or row is None:
                            raise AssertionError("a member without a key or a row")
                    count += len(members)
                    meter.sample()
        else:
            async for key, row in stream_members(connection, query, batch_size=batch):
                if key is None or row is None:
                    raise AssertionError("a member without a key or a row")
                count += 1
                if not count % batch:
                    meter.sample()
        return meter.stop(count)


async def decode_breakdown(
    url: str, statement: str, args: list[Any], columns: list[str], batch: int
) -> dict[str, float]:
    """Client CPU seconds asyncpg spends per column of the audience (each column read alone,
    less reading a constant per row), and that of the constant (the protocol's part), best of
    three."""
    seconds: dict[str, float] = {}
    for name in ["1", *columns]:
        expression = name if name == "1" else '"' + name.replace('"', '""') + '"'
        sql = f"SELECT {expression} FROM ({statement}) AS audience"
        best = min([(await time_driver(url, sql, args, batch)).client_cpu for _ in range(3)])
        seconds[name] = round(best if name == "1" else max(best - seconds["1"], 0.0), 3)
    return {"per_row_constant" if name == "1" else name: v for name, v in seconds.items()}


async def measure(timing: Timing, run: Callable[[], Awaitable[Sample]]) -> None:
    gc.collect()
    sample = await run()
    if timing.samples and sample.members != timing.members:
        raise AssertionError(f"{timing.name}: {sample.members} members, {timing.members} before")
    timing.samples.append(sample)


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    members, repeat, batch = arguments.members, arguments.repeat, arguments.batch_size
    rows = rows_for(members)
    settings = Settings()
    async with bench_database(arguments.url) as url:
        load_seconds = await load(url, rows)
        async with open_source(settings, SourceType.postgres, url) as connection:
            columns = await describe_model(
                connection, query=None, table="customers", primary_key="id"
            )
            model = ModelSpec(primary_key="id", columns=columns, table="customers")
            query = await compile_audience(FILTER, model, _NoOtherModels())
            matching = int((await connection.fetch(query.count())).rows[0][0])
        sql = copy_sql(query)
        statement, driver_args = driver_statement(query)
        timings = {
            name: Timing(name)
            for name in ("copy_floor", "driver_cursor", "stream", "batches", "cursor_batches")
        }
        for _ in range(repeat):
            await measure(timings["copy_floor"], lambda: time_floor(url, sql))
            await measure(
                timings["driver_cursor"], lambda: time_driver(url, statement, driver_args, batch)
            )
            await measure(
                timings["stream"],
                lambda: time_stream(settings, url, query, batch, batches=False),
            )
            await measure(
                timings["batches"],
                lambda: time_stream(settings, url, query, batch, batches=True),
            )
            await measure(
                timings["cursor_batches"],
                lambda: time_stream(settings, url, query, batch, batches=True, cursor=True),
            )
        breakdown = (
            await decode_breakdown(url, statement, driver_args, [c.name for c in columns], batch)
            if arguments.breakdown
            else None
        )
    counts = {timing.members for timing in timings.values()}
    if counts != {matching}:
        raise AssertionError(f"the ways disagree on the audience: {counts} vs {matching}")
    floor = timings["copy_floor"].best
    return {
        "benchmark": "membership",
        "members": matching,
        "rows": rows,
        "selectivity": round(matching / rows, 4) if rows else None,
        "filter": FILTER,
        "batch_size": batch,
        "repeat": repeat,
        "load_seconds": round(load_seconds, 2),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        **{name: timing.as_json() for name, timing in timings.items()},
        "ratio": round(timings["stream"].best / floor, 2) if floor else None,
        "batches_ratio": round(timings["batches"].best / floor, 2) if floor else None,
        "driver_ratio": round(timings["driver_cursor"].best / floor, 2) if floor else None,
        "cursor_batches_ratio": (
            round(timings["cursor_batches"].best / floor, 2) if floor else None
        ),
        "target_ratio": 1.5,
        "sql": sql,
        "decode_cpu_seconds": breakdown,
    }


class _NoOtherModels:
    async def model(self, model_id: uuid.UUID) -> None:
        return None

    async def audience(self, audience_id: uuid.UUID) -> None:
        return None


def report(result: dict[str, Any]) -> str:
    members = result["members"]
    lines = [
        f"membership benchmark: {members:,} members of {result['rows']:,} customers match "
        f"(selectivity {result['selectivity']:.0%}); batch {result['batch_size']}, "
        f"best of {result['repeat']}; Python {result['python']}, {result['cpus']} CPUs",
        f"filter: {json.dumps(result['filter'])}",
        f"floor:  COPY ({' '.join(result['sql'].split())}) TO STDOUT",
        "",
        f"{'way':<42}{'wall s':>7}{'x floor':>8}{'members/s':>11}"
        f"{'client CPU s':>13}{'server CPU s':>13}{'peak RSS +':>11}",
    ]
    labels = {
        "copy_floor": "COPY (same query) TO STDOUT into nothing",
        "driver_cursor": "asyncpg cursor alone, Records dropped",
        "stream": "stream_members: every (key, row)",
        "batches": "stream_member_batches: every (key, row)",
        "cursor_batches": "stream_member_batches through the cursor",
    }
    floor = result["copy_floor"]["seconds"]
    for name, label in labels.items():
        timing = result[name]
        server = timing["server_cpu_seconds"]
        lines.append(
            f"{label:<42}{timing['seconds']:>7.3f}{timing['seconds'] / floor:>7.2f}x"
            f"{timing['members_per_second']:>11,}{timing['client_cpu_seconds']:>13.2f}"
            f"{'-' if server is None else f'{server:.2f}':>13}"
            f"{timing['peak_rss_delta_mb']:>8.1f} MB"
        )
    met = "met" if result["ratio"] <= result["target_ratio"] else "NOT met"
    lines += [
        "",
        f"ratio stream_members / COPY floor = {result['ratio']:.2f} "
        f"(target <= {result['target_ratio']}: {met}); "
        f"stream_member_batches / floor = {result['batches_ratio']:.2f}; "
        f"asyncpg cursor alone / floor = {result['driver_ratio']:.2f}; "
        f"through the cursor / floor = {result['cursor_batches_ratio']:.2f}",
    ]
    if result["decode_cpu_seconds"]:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result["decode_cpu_seconds"].items())
        lines.append(f"asyncpg decoding, client CPU s by column: {parts}")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.membership", description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000, help="audience size")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way (best kept)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="stream batch")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    parser.add_argument("--url", default=DEFAULT_URL, help="an admin URL of the server")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time asyncpg decoding each column alone (client CPU)",
    )
    arguments = parser.parse_args(argv)
    if arguments.members < 1 or arguments.repeat < 1 or arguments.batch_size < 1:
        parser.error("--members, --repeat and --batch-size must be positive")
    return arguments


def run(argv: list[str] | None = None) -> None:
    arguments = parse(argv)
    result = asyncio.run(main(arguments))
    print(json.dumps(result) if arguments.json else report(result))


if __name__ == "__main__":
    run()
