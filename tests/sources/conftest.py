"""Real SQLite files, DuckDB files and a PostgreSQL database of this session, for the engine."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import duckdb
import pytest

from app.settings import Settings
from tests.services import POSTGRES_ADMIN_URL, require_reachable, unique_name
from tests.sources.support import DIALECTS, RealSource


@pytest.fixture(scope="session")
def source_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("engine") / "sources"
    folder.mkdir()
    return Settings(source_files_dir=folder)


@pytest.fixture(scope="session")
def postgres_source_url() -> Iterator[str]:
    """A UTF-8 database of our own on the real server, dropped at the end of the session."""
    require_reachable("PostgreSQL", POSTGRES_ADMIN_URL)
    name = unique_name("signalsmith_sources")

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_source(dialect: str, settings: Settings, request: pytest.FixtureRequest) -> RealSource:
    if dialect == "postgres":
        url = request.getfixturevalue("postgres_source_url")
        return RealSource(dialect, settings, url, admin_url=url)
    folder: Path = settings.resolved_source_files_dir
    if dialect == "sqlite":
        sqlite3.connect(folder / "source.sqlite").close()
        return RealSource(dialect, settings, "sqlite:///source.sqlite")
    duckdb.connect(str(folder / "source.duckdb")).close()
    return RealSource(dialect, settings, "duckdb:///source.duckdb")


@pytest.fixture(scope="session", params=DIALECTS)
def source(request: pytest.FixtureRequest, source_settings: Settings) -> RealSource:
    """One real source per dialect; tables are added by the tests that need them."""
    return make_source(request.param, source_settings, request)
