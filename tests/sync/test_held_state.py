"""What a commit records as held state reads back exactly, whatever the keys hold (commas,
quotes, backslashes, nothing at all) and whether members come with identifiers and line
digests or not."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from app.runtime import Runtime
from app.sync.held import Sent, record_sent
from models import SyncedMember
from tests.factories import World, create_sync

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


async def record(runtime: Runtime, sync_id: Any, upserts: list[Sent], removed: list[str]) -> None:
    async with runtime.database.session() as session:
        await record_sent(session, sync_id, upserts, removed, numeric=False)
        await session.commit()


async def test_held_state_reads_back_exactly(runtime: Runtime, world: World) -> None:
    sync = await create_sync(runtime, world)
    sent: list[Sent] = [
        (
            key,
            f"{i:064x}",
            None if i % 3 == 0 else {} if i % 3 == 1 else {"email": f"h{i}", "n": i},
            None if i % 2 else bytes([i]) * 16,
        )
        for i, key in enumerate(KEYS)
    ]
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
