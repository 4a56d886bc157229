"""What a commit records as held state reads back exactly, whatever the keys hold (commas,
quotes, backslashes, nothing at all) and whether members come with identifiers and line
digests or not."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlmodel import col, select

from app.runtime import Runtime
from app.services import syncs
from app.sync.held import AlreadyHeld, Sent, SyncGone, held_members, record_sent
from models import SyncedMember
from tests.factories import World, as_token, create_sync
from tests.pg_activity import until_backends

KEYS = ["plain", "a,b", ",", "", '"quoted"', "back\\slash", "{brace}", "é👍", "null", "NULL"]


async def held(runtime: Runtime, sync_id: Any) -> dict[str, tuple[Any, ...]]:
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(
                col(SyncedMember.member_key),
                col(SyncedMember.fingerprint),
                col(SyncedMember.identifiers),
                col(SyncedMember.row_digest),
            ).where(col(SyncedMember.sync_id) == sync_id)
        )
        return {key: (fp, ids, digest) for key, fp, ids, digest in rows}


async def record(
    runtime: Runtime,
    sync_id: Any,
    upserts: list[Sent],
    removed: list[str],
    *,
    added: list[Sent] | None = None,
    numeric: bool = False,
) -> None:
    async with runtime.database.session() as session:
        await record_sent(session, sync_id, upserts, removed, numeric=numeric, added=added or [])
        await session.commit()


def sent_rows(keys: list[str]) -> list[Sent]:
    """Every shape of row: identifiers none, empty or set; a digest or none."""
    return [
        (
            key,
            f"{i:064x}",
            None if i % 3 == 0 else {} if i % 3 == 1 else {"email": f"h{i}", "n": i},
            None if i % 2 else bytes([i]) * 16,
        )
        for i, key in enumerate(keys)
    ]


async def test_held_state_reads_back_exactly(runtime: Runtime, world: World) -> None:
    sync = await create_sync(runtime, world)
    sent = sent_rows(KEYS)
    await record(runtime, sync.id, sent, [])
    expected = {key: (fp, ids or None, digest) for key, fp, ids, digest in sent}
    assert await held(runtime, sync.id) == expected
    # One member at a time, the only key empty or a comma; updates replace what was held.
    for key in ("", ",", "x"):
        await record(runtime, sync.id, [(key, "f" * 64, None, None)], [])
        expected[key] = ("f" * 64, None, None)
        assert await held(runtime, sync.id) == expected
    await record(runtime, sync.id, [("plain", "e" * 64, {"email": "z"}, b"\x00" * 16)], ["a,b", ""])
    expected["plain"] = ("e" * 64, {"email": "z"}, b"\x00" * 16)
    del expected["a,b"], expected[""]
    assert await held(runtime, sync.id) == expected


async def test_added_rows_read_back_exactly(runtime: Runtime, world: World) -> None:
    """Rows the run found not held (PostgreSQL copies them in) read back as upserted ones,
    beside upserts and removals in the same commit."""
    sync = await create_sync(runtime, world)
    await record(
        runtime, sync.id, [("old", "0" * 64, None, None), ("gone", "1" * 64, None, None)], []
    )
    added = sent_rows(KEYS)
    await record(runtime, sync.id, [("old", "2" * 64, None, None)], ["gone"], added=added)
    expected = {key: (fp, ids or None, digest) for key, fp, ids, digest in added}
    assert await held(runtime, sync.id) == {**expected, "old": ("2" * 64, None, None)}


async def test_an_added_row_held_after_all_loses_the_commit(runtime: Runtime, world: World) -> None:
    """A row recorded as added that is held (something else wrote it since the run read the
    held state): PostgreSQL, which copies added rows in, raises `AlreadyHeld` and the commit
    records nothing (the run's ledger records the rows again as upserts); SQLite upserts."""
    sync = await create_sync(runtime, world)
    before = ("a" * 64, {"email": "old"}, b"\x01" * 16)
    await record(runtime, sync.id, [("2", *before)], [])
    added: list[Sent] = [(str(k), "b" * 64, None, b"\x02" * 16) for k in (1, 2, 3)]
    if runtime.database.engine.dialect.name == "postgresql":
        with pytest.raises(AlreadyHeld):
            await record(runtime, sync.id, [("4", "c" * 64, None, None)], ["2"], added=added)
        assert await held(runtime, sync.id) == {"2": before}
    else:
        await record(runtime, sync.id, [], [], added=added, numeric=True)
        assert await held(runtime, sync.id) == {
            key: ("b" * 64, None, b"\x02" * 16) for key in ("1", "2", "3")
        }


async def test_added_number_keys_read_in_number_order(runtime: Runtime, world: World) -> None:
    """Added rows of a number-keyed sync keep their key's order (PostgreSQL's `member_order`):
    the held state reads back in the membership stream's order."""
    sync = await create_sync(runtime, world)
    keys = ["10", "9", "-3", "100", "20"]
    await record(
        runtime, sync.id, [], [], added=[(k, "c" * 64, None, None) for k in keys], numeric=True
    )
    async for batch in held_members(runtime.database.engine, sync.id, numeric=True):
        assert [key for key, _, _ in batch] == ["-3", "9", "10", "20", "100"]
        break
    else:
        raise AssertionError("nothing held")


async def test_two_transactions_write_a_syncs_held_state_at_once(
    runtime: Runtime, world: World
) -> None:
    """Held state written while another transaction's is open (a run's commit, and the
    members a remove-mode run tracks unsent, or its digests) does not wait for it: the sync's
    row is locked `FOR KEY SHARE`, which they share and a deletion waits for. (It was
    `FOR NO KEY UPDATE`, which they do not share.)"""
    sync = await create_sync(runtime, world)
    async with runtime.database.session() as first:
        await record_sent(
            first, sync.id, [], [], numeric=False, added=[("1", "a" * 64, None, None)]
        )
        async with runtime.database.session() as second:
            if runtime.database.engine.dialect.name == "postgresql":  # SQLite: one writer
                await asyncio.wait_for(
                    record_sent(
                        second, sync.id, [], [], numeric=False, added=[("2", "b" * 64, None, None)]
                    ),
                    timeout=10,
                )
                await second.commit()
        await first.commit()
    assert sorted(await held(runtime, sync.id)) == (
        ["1", "2"] if runtime.database.engine.dialect.name == "postgresql" else ["1"]
    )


async def held_count(runtime: Runtime, sync_id: Any) -> int:
    return len(await held(runtime, sync_id))


async def test_nothing_is_held_for_a_sync_that_is_gone(runtime: Runtime, world: World) -> None:
    gone = uuid.uuid4()
    with pytest.raises(SyncGone):
        await record(runtime, gone, [("1", "a" * 64, None, None)], [])
    with pytest.raises(SyncGone):
        await record(runtime, gone, [], [], added=[("2", "a" * 64, None, None)])
    assert await held_count(runtime, gone) == 0


async def deletion_waits(runtime: Runtime) -> None:
    """Returns once the deletion waits for the commit: on PostgreSQL, once a backend waits
    for a lock (asked outside any transaction); SQLite has no such view, so a moment."""
    engine = runtime.database.engine
    if engine.dialect.name != "postgresql":
        await asyncio.sleep(0.5)
        return
    await until_backends(
        engine,
        "wait_event_type = 'Lock'",
        exist=True,
        never="the deletion never waited for the commit",
    )


async def test_deleting_a_sync_waits_for_a_commit_and_deletes_what_it_held(
    runtime: Runtime, world: World
) -> None:
    """The held state has no foreign key: a commit that writes it while the sync is being
    deleted must not leave rows behind (the deletion waits for it, then deletes them)."""
    sync = await create_sync(runtime, world)
    await record(runtime, sync.id, [("1", "a" * 64, None, None)], [])
    async with runtime.database.session() as session:
        await record_sent(session, sync.id, [("2", "b" * 64, None, None)], [], numeric=False)

        async def delete() -> None:
            async with as_token(runtime, world.editor_token) as ctx:
                await syncs.delete_audience_sync(
                    ctx, workspace_id=world.workspace_id, sync_id=sync.id
                )

        deleting = asyncio.create_task(delete())
        await deletion_waits(runtime)
        assert not deleting.done()  # waiting for the commit in progress
        await session.commit()
    await asyncio.wait_for(deleting, timeout=30)
    assert await held_count(runtime, sync.id) == 0
    with pytest.raises(SyncGone):  # and a later commit records nothing
        await record(runtime, sync.id, [("3", "c" * 64, None, None)], [])
    assert await held_count(runtime, sync.id) == 0
