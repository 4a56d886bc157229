"""The snapshot store: what each destination holds because we sent it (`SyncedMember`)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from asyncpg import UniqueViolationError
from sqlalchemy import (
    Integer,
    Numeric,
    Select,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from app.sync.plan import Held
from models import AudienceSync, SyncedMember
from models.columns import utcnow

#: Held members read from the database at a time.
HELD_BATCH = 20000


def sort_key_for(numeric: bool) -> Any:
    """The key order the membership stream uses: numeric for number keys, else code points."""
    return Decimal if numeric else str


def key_order(key: Any, dialect: str, numeric: bool) -> Any:
    """ORDER BY for a member-key column that matches the membership stream's order."""
    if numeric:
        return cast(key, Numeric) if dialect == "postgresql" else cast(key, Integer)
    return key.collate("C") if dialect == "postgresql" else key


def _held_order(dialect: str, numeric: bool) -> Any:
    """The held state's key order, served by an index on PostgreSQL: the primary key's
    (`member_key` compares byte for byte) or `member_order`'s (the key as a number)."""
    if numeric and dialect == "postgresql":
        return col(SyncedMember.member_order)
    return key_order(col(SyncedMember.member_key), dialect, numeric)


async def fill_member_order(session: AsyncSession, sync_id: uuid.UUID, *, numeric: bool) -> None:
    """Give every held member of a number-keyed sync its `member_order` (rows written before
    the column existed have none), so the held state reads in order; committed by the caller.
    A no-op (an index look-up) once they all have one."""
    if numeric and session.get_bind().dialect.name == "postgresql":
        await session.execute(_FILL_ORDER, {"sync_id": sync_id})


def held_query(
    dialect: str, sync_id: uuid.UUID, *, numeric: bool
) -> Select[str, str, bytes | None]:
    """(member_key, fingerprint, row_digest) held for the sync, in the membership's key
    order."""
    return (
        select(
            col(SyncedMember.member_key),
            col(SyncedMember.fingerprint),
            col(SyncedMember.row_digest),
        )
        .where(col(SyncedMember.sync_id) == sync_id)
        .order_by(_held_order(dialect, numeric))
    )


async def held_members(
    engine: AsyncEngine, sync_id: uuid.UUID, *, numeric: bool, batch_size: int = HELD_BATCH
) -> AsyncIterator[Sequence[Held]]:
    """(member_key, fingerprint, row_digest) held for the sync, in batches, in the
    membership's key order.

    Reads on its own connection, so batches committed meanwhile do not disturb the stream.
    On PostgreSQL the driver's cursor is read directly: its records are those triples
    already, and a run reads as many as the audience has members. The planner is told not
    to sort: the index gives the order with the first row at once, where a plan made with
    statistics older than the sync's last runs (a table that was small) sorts every held
    member before the first (about 1 s a million here).
    """
    query = held_query(engine.dialect.name, sync_id, numeric=numeric)
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            compiled = query.compile(dialect=engine.dialect)
            parameters = [compiled.params[name] for name in compiled.positiontup or ()]
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.transaction(readonly=True):
                await driver.execute("SET LOCAL enable_sort = off")
                cursor = await driver.cursor(str(compiled), *parameters)
                while records := await cursor.fetch(batch_size):
                    yield records
            return
        result = await connection.stream(query.execution_options(yield_per=batch_size))
        async for rows in result.partitions():
            yield [(key, fingerprint, digest) for key, fingerprint, digest in rows]


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


#: (member key, fingerprint, identifiers or None, row digest or None) of a row the
#: destination acknowledged.
Sent = tuple[str, str, dict[str, Any] | None, bytes | None]


async def record_sent(
    session: AsyncSession,
    sync_id: uuid.UUID,
    upserts: Sequence[Sent],
    removed: Sequence[str],
    *,
    numeric: bool,
    added: Sequence[Sent] = (),
) -> None:
    """Record acknowledged rows (in the caller's transaction): upserts and `added` hold,
    removals drop. `added` are rows the run found not held (its adds); `upserts` may be held.
    `numeric`: the sync's keys are numbers (PostgreSQL keeps each as `member_order` too).
    Raises `SyncGone`, and on PostgreSQL `AlreadyHeld`: the transaction is then lost.

    One statement for any number of upserts: PostgreSQL takes them as a few texts it unpacks
    (`_UPSERT`), so the server plans and runs one insert; SQLite takes them as one
    `executemany`. PostgreSQL takes `added` by `COPY` (`_copy_added`).
    """
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and (upserts or added):
        # First on PostgreSQL: it begins the transaction (which COPY would not) and locks
        # the sync until the commit.
        await _check_sync(session, sync_id)
    if added and postgres:
        await _copy_added(session, sync_id, added, numeric=numeric, now=now)
    elif added:
        upserts = [*added, *upserts]
    if upserts and postgres:
        keys, fps, identifiers, digests = zip(*upserts, strict=True)
        listed = ",".join(keys)
        # Comma-separated unless a key holds a comma (or is the only key and empty).
        keys_json = not listed or listed.count(",") != len(keys) - 1
        await session.execute(
            _UPSERT,
            {
                "sync_id": sync_id,
                "keys": None if keys_json else listed,
                "keys_json": json.dumps(keys) if keys_json else "[]",
                "fingerprints": ",".join(fps),
                "digests": ",".join("" if d is None else d.hex() for d in digests),
                "identifiers": (
                    json.dumps([ids or None for ids in identifiers]) if any(identifiers) else "[]"
                ),
                "now": now,
                "numeric": numeric,
            },
        )
    elif upserts:
        await _sqlite_upsert(session, sync_id, upserts, now)
    if not postgres and (upserts or added):
        # Last on SQLite, whose transaction begins with the first write.
        await _check_sync(session, sync_id)
    for start in range(0, len(removed), 500):
        await session.execute(
            delete(SyncedMember).where(
                col(SyncedMember.sync_id) == sync_id,
                col(SyncedMember.member_key).in_(removed[start : start + 500]),
            )
        )


async def _sqlite_upsert(
    session: AsyncSession, sync_id: uuid.UUID, upserts: Sequence[Sent], now: datetime
) -> None:
    """The upsert on SQLite: one `executemany` of values each column's own type converted
    (a row through SQLAlchemy's insert cost about 20 µs here, mostly binding parameters)."""
    dialect = session.get_bind().dialect
    columns = SyncedMember.__table__.c  # type: ignore[attr-defined]
    uid, when, ids, digest = (
        columns[name].type.bind_processor(dialect) or (lambda value: value)
        for name in ("sync_id", "synced_at", "identifiers", "row_digest")
    )
    sync, at = uid(sync_id), when(now)
    rows = [
        (sync, key, fp, None if d is None else digest(d), ids(i) if i else None, at)
        for key, fp, i, d in upserts
    ]
    connection = await session.connection()
    await connection.exec_driver_sql(_SQLITE_UPSERT, rows)


_SQLITE_UPSERT = (
    "INSERT INTO synced_members "
    "(sync_id, member_key, fingerprint, row_digest, identifiers, synced_at) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (sync_id, member_key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "row_digest = excluded.row_digest, identifiers = excluded.identifiers, "
    "synced_at = excluded.synced_at"
)


#: The held state's columns, in the order `_copy_text` writes them.
_COPY_COLUMNS = (
    "sync_id",
    "member_key",
    "member_order",
    "fingerprint",
    "row_digest",
    "identifiers",
    "synced_at",
)
#: What COPY's text format escapes inside a value.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(values: list[str]) -> list[str]:
    """`values` written as COPY's text format reads them back (unchanged when nothing in
    them needs escaping: one search over them all)."""
    if _COPY_SPECIAL.search("".join(values)) is None:
        return values
    return [value.translate(_COPY_ESCAPES) for value in values]


def _copy_text(sync_id: uuid.UUID, added: Sequence[Sent], *, numeric: bool, now: datetime) -> bytes:
    """The rows of `added` as COPY's text format, in `_COPY_COLUMNS`' order."""
    keys = _copy_value([key for key, _, _, _ in added])
    # `member_order`: the key's own text is its number's.
    orders = keys if numeric else ["\\N"] * len(keys)
    digests = ["\\N" if d is None else "\\\\x" + d.hex() for _, _, _, d in added]
    # JSON text holds no tab or line break (`json.dumps` escapes them): only backslashes.
    identifiers = ["\\N" if not i else json.dumps(i).replace("\\", "\\\\") for _, _, i, _ in added]
    head, tail = f"{sync_id}\t", f"\t{now.isoformat()}\n"
    lines = [
        f"{head}{key}\t{order}\t{fp}\t{digest}\t{ids}{tail}"
        for key, order, (_, fp, _, _), digest, ids in zip(
            keys, orders, added, digests, identifiers, strict=True
        )
    ]
    return "".join(lines).encode()


async def _copy_added(
    session: AsyncSession,
    sync_id: uuid.UUID,
    added: Sequence[Sent],
    *,
    numeric: bool,
    now: datetime,
) -> None:
    """Insert rows that are not held by `COPY`, in the caller's transaction (begun); raises
    `AlreadyHeld` if one is held after all.

    Most of a first sync's rows come this way: PostgreSQL spent about 8.6 s of CPU on a
    million rows through `_UPSERT` here (its speculative insertion, the texts it unpacks),
    4.3 s by `COPY`, which inserts the rows in bulk. The rows go as text, built by joining
    strings: asyncpg's binary `copy_records_to_table` cost this process about 4 µs a row.
    """
    data = _copy_text(sync_id, added, numeric=numeric, now=now)
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    try:
        await driver.copy_to_table(
            SyncedMember.__tablename__,
            source=memoryview(data),  # a buffer: asyncpg takes `bytes` for a file's path
            columns=_COPY_COLUMNS,
            format="text",
        )
    except UniqueViolationError as exc:
        raise AlreadyHeld(f"a member added to audience sync {sync_id} is held") from exc


class AlreadyHeld(Exception):
    """A row recorded as added is held after all. Only a run writes its sync's held state,
    so something else did (a run the reaper gave up on whose worker still writes): record
    the rows again, in a new transaction, with the added ones as upserts."""


#: The upsert of acknowledged rows on PostgreSQL. The rows come as a few texts (keys,
#: fingerprints and digests in hex separated by commas; keys with a comma as a JSON array;
#: identifiers as a JSON array) rather than array parameters: asyncpg checks every element
#: of an array against `collections.abc` (about 0.5 µs each, 1.6 s of a million-row first
#: sync) where `join` takes a tenth of that, and the server splits the texts for about what
#: it spends reading arrays. It zips them back by position.
_UPSERT = text(
    "INSERT INTO synced_members "
    "(sync_id, member_key, member_order, fingerprint, row_digest, identifiers, synced_at) "
    "SELECT CAST(:sync_id AS UUID), s.key, "
    "CASE WHEN CAST(:numeric AS BOOLEAN) THEN CAST(s.key AS NUMERIC) END, "
    "s.fingerprint, decode(NULLIF(s.digest, ''), 'hex'), "
    "NULLIF(CAST(i.ids AS JSONB), CAST('null' AS JSONB)), CAST(:now AS TIMESTAMPTZ) "
    "FROM unnest("
    "CASE WHEN CAST(:keys AS TEXT) IS NULL THEN ARRAY("
    "SELECT j.key FROM json_array_elements_text(CAST(:keys_json AS JSON)) WITH ORDINALITY "
    "AS j (key, n) ORDER BY j.n) "
    "ELSE string_to_array(CAST(:keys AS TEXT), ',') END, "
    "string_to_array(CAST(:fingerprints AS TEXT), ','), "
    "string_to_array(CAST(:digests AS TEXT), ',')"
    ") WITH ORDINALITY AS s (key, fingerprint, digest, n) "
    "LEFT JOIN json_array_elements(CAST(:identifiers AS JSON)) WITH ORDINALITY "
    "AS i (ids, n) USING (n) "
    "ON CONFLICT (sync_id, member_key) DO UPDATE SET fingerprint = excluded.fingerprint, "
    "row_digest = excluded.row_digest, member_order = excluded.member_order, "
    "identifiers = excluded.identifiers, synced_at = excluded.synced_at"
)


class SyncGone(Exception):
    """The sync was deleted: nothing may be held for it any more."""


async def _check_sync(session: AsyncSession, sync_id: uuid.UUID) -> None:
    """Raises `SyncGone` when the sync no longer exists. Asked in the transaction that
    writes held state: on PostgreSQL before writing, locking the sync's row (`FOR KEY SHARE`)
    until the commit, so a deletion, which locks it first, either went first (the sync is
    gone) or waits and deletes what was written; on SQLite after writing (its transaction
    begins with the first write, and it runs one writer at a time). (The held state has no
    foreign key; see `SyncedMember`.)"""
    query = select(col(AudienceSync.id)).where(col(AudienceSync.id) == sync_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
    if (await session.execute(query)).first() is None:
        raise SyncGone(f"audience sync {sync_id} was deleted")


async def record_digests(
    session: AsyncSession, sync_id: uuid.UUID, digests: Sequence[tuple[str, bytes]]
) -> None:
    """Give held members the digest of their current line (they were found unchanged by
    their fingerprint: the line or the recipe changed, not the payload), so the next run
    knows them by it; in the caller's transaction."""
    if not digests:
        return
    keys = [key for key, _ in digests]
    values = [digest for _, digest in digests]
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_SET_DIGESTS, {"sync_id": sync_id, "keys": keys, "digests": values})
        return
    table = SyncedMember.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.sync_id == bindparam("sync"), table.c.member_key == bindparam("key"))
        .values(row_digest=bindparam("digest")),
        [{"sync": sync_id, "key": key, "digest": digest} for key, digest in digests],
    )


_SET_DIGESTS = text(
    "UPDATE synced_members SET row_digest = current.digest "
    "FROM unnest(CAST(:keys AS TEXT[]), CAST(:digests AS BYTEA[])) AS current (key, digest) "
    "WHERE synced_members.sync_id = CAST(:sync_id AS UUID) "
    "AND synced_members.member_key = current.key"
)

_FILL_ORDER = text(
    "UPDATE synced_members SET member_order = CAST(member_key AS NUMERIC) "
    "WHERE sync_id = CAST(:sync_id AS UUID) AND member_order IS NULL"
)
