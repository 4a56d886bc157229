"""The snapshot store: what each destination holds because we sent it (`SyncedMember`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Numeric, cast, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from models import SyncedMember
from models.columns import utcnow

#: Rows per upsert statement: 5 parameters each, well under every driver's limit.
UPSERT_CHUNK = 2000


def sort_key_for(numeric: bool) -> Any:
    """The key order the membership stream uses: numeric for number keys, else code points."""
    return Decimal if numeric else str


def key_order(key: Any, dialect: str, numeric: bool) -> Any:
    """ORDER BY for a member-key column that matches the membership stream's order."""
    if numeric:
        return cast(key, Numeric) if dialect == "postgresql" else cast(key, Integer)
    return key.collate("C") if dialect == "postgresql" else key


async def held_members(
    engine: AsyncEngine, sync_id: uuid.UUID, *, numeric: bool
) -> AsyncIterator[tuple[str, str]]:
    """(member_key, fingerprint) held for the sync, streamed in the membership's key order.

    Reads on its own connection, so batches committed meanwhile do not disturb the stream.
    """
    order = key_order(col(SyncedMember.member_key), engine.dialect.name, numeric)
    query = (
        select(col(SyncedMember.member_key), col(SyncedMember.fingerprint))
        .where(col(SyncedMember.sync_id) == sync_id)
        .order_by(order)
    )
    async with engine.connect() as connection:
        result = await connection.stream(query.execution_options(yield_per=5000))
        async for key, fingerprint in result:
            yield str(key), str(fingerprint)


async def held_count(session: AsyncSession, sync_id: uuid.UUID) -> int:
    query = (
        select(func.count()).select_from(SyncedMember).where(col(SyncedMember.sync_id) == sync_id)
    )
    return int((await session.execute(query)).scalar_one())


async def held_identifiers(
    session: AsyncSession, sync_id: uuid.UUID, keys: list[str]
) -> dict[str, dict[str, Any]]:
    """The identifiers each of `keys` was last sent under (members without any are absent)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        query = select(col(SyncedMember.member_key), col(SyncedMember.identifiers)).where(
            col(SyncedMember.sync_id) == sync_id,
            col(SyncedMember.member_key).in_(keys[start : start + 500]),
        )
        for key, identifiers in await session.execute(query):
            if identifiers:
                found[str(key)] = dict(identifiers)
    return found


#: (member key, fingerprint, identifiers or None) of a row the destination acknowledged.
Sent = tuple[str, str, dict[str, Any] | None]


async def record_sent(
    session: AsyncSession,
    sync_id: uuid.UUID,
    upserts: Iterable[Sent],
    removed: Iterable[str],
) -> None:
    """Record acknowledged rows (in the caller's transaction): upserts hold, removals drop."""
    now = utcnow()
    rows = [
        {
            "sync_id": sync_id,
            "member_key": key,
            "fingerprint": fp,
            "identifiers": identifiers or None,
            "synced_at": now,
        }
        for key, fp, identifiers in upserts
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Chunks keep each statement under the drivers' bound-parameter limits (asyncpg: 32 767).
    for start in range(0, len(rows), UPSERT_CHUNK):
        statement = insert(SyncedMember).values(rows[start : start + UPSERT_CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=["sync_id", "member_key"],
            set_={
                "fingerprint": statement.excluded.fingerprint,
                "identifiers": statement.excluded.identifiers,
                "synced_at": statement.excluded.synced_at,
            },
        )
        await session.execute(statement)
    keys = list(removed)
    for start in range(0, len(keys), 500):
        await session.execute(
            delete(SyncedMember).where(
                col(SyncedMember.sync_id) == sync_id,
                col(SyncedMember.member_key).in_(keys[start : start + 500]),
            )
        )
