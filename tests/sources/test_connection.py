"""Source connections: read-only, bounded by the statement timeout, failing with the database's
message and never a password."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from app.errors import InvalidInput
from app.settings import Settings
from app.sources.connection import SourceError, check_source, open_source
from models.enums import SourceType
from tests.services import POSTGRES_ADMIN_URL
from tests.sources.support import RealSource

SLOW = {
    "sqlite": (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r"
    ),
    "duckdb": "SELECT count(*) FROM range(1000000000000) a(i) WHERE i % 7 = 3",
    "postgres": "SELECT pg_sleep(30)",
}
PASSWORD = "s3cret-Hunter2"


async def test_check_source_accepts_a_working_source(source: RealSource) -> None:
    await check_source(source.settings, source.source_type, source.url)


async def test_the_connection_is_read_only(source: RealSource) -> None:
    async with source.open() as connection:
        with pytest.raises(SourceError) as caught:
            await connection.fetch(sa.text("CREATE TABLE intruder (a INTEGER)"))
        assert caught.value.details[0].field == "query"
        # Still usable after the refusal.
        assert (await connection.fetch(sa.select(sa.literal(1)))).rows[0][0] == 1
    async with source.open() as connection:
        with pytest.raises(SourceError):
            await connection.fetch(sa.text("SELECT * FROM intruder"))


async def test_a_slow_query_stops_at_the_statement_timeout(source: RealSource) -> None:
    async with source.open(statement_timeout=0.3) as connection:
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            await connection.fetch(sa.text(SLOW[source.dialect]))
        assert time.monotonic() - started < 5
        assert caught.value.details[0].message == (
            "the query ran longer than the statement timeout (0.3 s)"
        )
        assert (await connection.fetch(sa.select(sa.literal(2)))).rows[0][0] == 2


async def test_the_timeout_bounds_each_streamed_step(source: RealSource) -> None:
    async with source.open(statement_timeout=0.3) as connection:
        with pytest.raises(SourceError):
            async for _ in connection.stream(sa.text(SLOW[source.dialect])):
                pass


async def test_cancelling_a_query_frees_the_connection(source: RealSource) -> None:
    async with source.open(statement_timeout=60) as connection:
        task = asyncio.create_task(connection.fetch(sa.text(SLOW[source.dialect])))
        await asyncio.sleep(0.3)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert time.monotonic() - started < 5


async def test_a_database_error_carries_the_message_not_the_statement(source: RealSource) -> None:
    async with source.open() as connection:
        with pytest.raises(SourceError) as caught:
            await connection.fetch(
                sa.text("SELECT no_such_column FROM no_such_table"), field="table"
            )
    detail = caught.value.details[0]
    assert detail.field == "table"
    assert "no_such_table" in detail.message
    assert "[SQL:" not in detail.message and "sqlalche.me" not in detail.message
    assert caught.value.http_status == 422


@pytest.mark.parametrize(
    ("source_type", "url", "escape"),
    [
        (SourceType.sqlite, "sqlite:///:memory:", "ATTACH DATABASE '/etc/hostname' AS other"),
        (SourceType.duckdb, "duckdb:///:memory:", "SELECT * FROM read_csv('/etc/hostname')"),
        (SourceType.duckdb, "duckdb:///:memory:", "ATTACH '/tmp/other.duckdb'"),
    ],
)
async def test_file_sources_cannot_reach_other_files(
    source_settings: Settings, source_type: SourceType, url: str, escape: str
) -> None:
    async with open_source(source_settings, source_type, url) as connection:
        with pytest.raises(SourceError):
            await connection.fetch(sa.text(escape))


@pytest.mark.parametrize(
    ("source_type", "url", "expected"),
    [
        (SourceType.sqlite, "sqlite:///missing.db", "unable to open"),
        (SourceType.duckdb, "duckdb:///missing.duckdb", "does not exist"),
        (SourceType.sqlite, "sqlite:///notes.txt", "not a database"),
        (
            SourceType.postgres,
            f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres",
            "Connect call failed",
        ),
        (
            SourceType.postgres,
            "postgresql://postgres:{PASSWORD}@127.0.0.1:5432/no_such_db_xyz",
            "no_such_db_xyz",
        ),
        (
            SourceType.postgres,
            "postgresql://nobody_xyz:{PASSWORD}@127.0.0.1:5432/postgres",
            "nobody_xyz",
        ),
    ],
)
async def test_an_unusable_source_is_a_clear_sanitised_error(
    source_settings: Settings, source_type: SourceType, url: str, expected: str
) -> None:
    (source_settings.resolved_source_files_dir / "notes.txt").write_text("hello " * 1000)
    url = url.replace("{PASSWORD}", PASSWORD)
    if source_type is SourceType.postgres:
        host = POSTGRES_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
        url = url.replace("127.0.0.1:5432", host)
    with pytest.raises(SourceError) as caught:
        await check_source(source_settings, source_type, url)
    detail = caught.value.details[0]
    assert detail.field == "config.url"
    assert expected in detail.message
    assert PASSWORD not in detail.message and PASSWORD not in caught.value.message


async def test_a_file_outside_the_folder_is_refused_before_opening(
    source_settings: Settings,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        async with open_source(source_settings, SourceType.sqlite, "sqlite:///../../x.db"):
            pass  # pragma: no cover
    assert caught.value.details[0].field == "config.url"


@pytest.fixture
def new_york() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_duckdb_compares_times_in_utc_whatever_the_host_zone(
    source_settings: Settings, new_york: None
) -> None:
    async with open_source(source_settings, SourceType.duckdb, "duckdb:///:memory:") as connection:
        rows = (await connection.fetch(sa.text("SELECT current_setting('TimeZone')"))).rows
    assert rows[0][0] == "UTC"
