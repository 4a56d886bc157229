"""Fixtures of the run tests: a real webhook receiver, a runtime allowed to reach it, and a
database of the test's own (for tests whose reaper acts on every run it finds)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db import migrate_async
from app.runtime import Runtime
from app.settings import Settings
from tests.services import POSTGRES_ADMIN_URL, unique_name


@pytest.fixture
async def local_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime that may send to 127.0.0.1 (where the test receiver listens)."""
    runtime = Runtime(settings.model_copy(update={"allow_private_destinations": True}))
    yield runtime
    await runtime.close()


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def own_settings(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """`settings` on a fresh, migrated database of the same dialect that only this test uses:
    a reaper with a shifted clock then sees this test's runs and no other's."""
    if settings.sqlite_path is not None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        await migrate_async(url)
        yield settings.model_copy(update={"database_url": url})
        return
    name = unique_name("signalsmith_own")
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = f"{settings.database_url.rsplit('/', 1)[0]}/{name}"
        await migrate_async(url)
        yield settings.model_copy(update={"database_url": url})
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
