"""Waiting on what PostgreSQL's backends are doing (`pg_stat_activity`), for tests that must
act at a precise moment of another connection's work."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def until_backends(engine: AsyncEngine, where: str, *, exist: bool, never: str) -> None:
    """Returns once some other backend of the engine's database matches `where` (`exist`), or
    none does; raises AssertionError(`never`) after 10 s. Asked outside any transaction:
    inside one, `pg_stat_activity` is a frozen snapshot."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        f"AND pid <> pg_backend_pid() AND ({where})"
    )
    async with engine.connect() as connection:
        for _ in range(200):
            if bool((await connection.execute(query)).scalar_one()) == exist:
                return
            await connection.rollback()  # a fresh snapshot each time
            await asyncio.sleep(0.05)
    raise AssertionError(never)
