"""The membership stream of a stored audience, for the sync engine (DESIGN §5.1, §5.3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from app.errors import InvalidInput, NotFound
from app.runtime import Runtime
from app.services.audience_queries import load_audience
from app.services.sources import open_stored_source
from app.sources.membership import LineBatch, SplitSelection, stream_line_batches
from models import Audience

Member = tuple[str | None, dict[str, Any]]


async def stream_audience_member_batches(
    runtime: Runtime,
    *,
    workspace_id: uuid.UUID,
    audience_id: uuid.UUID,
    split_group_id: uuid.UUID | None = None,
    columns: Sequence[str] | None = None,
    lines: bool = False,
) -> AsyncGenerator[list[Member] | LineBatch, None]:
    """The audience's members a batch at a time (what the engine takes), in key order,
    optionally only those of one split group; each row holds the key and `columns`
    (default: all). With `lines`, a batch that came as lines of text comes as a `LineBatch`
    (decoded as far as the engine asks).

    No caller here, so no authorization: the engine calls it for a sync it runs. The
    metadata session is closed before the first row is read; rows come from the source's
    streaming cursor (or COPY), one batch in memory at a time.
    """
    async with runtime.database.session() as session:
        audience = await session.get(Audience, audience_id)
        if audience is None or audience.workspace_id != workspace_id:
            raise NotFound.of("audience", audience_id)
        stored = await load_audience(session, audience)
    split = None
    if split_group_id is not None:
        if stored.layout is None or split_group_id not in stored.layout.ranges:
            raise InvalidInput.field(
                "split_group_id", f"no split group {split_group_id} in audience {audience_id}"
            )
        split = SplitSelection(audience.split_salt, stored.layout, split_group_id)
    async with open_stored_source(runtime.settings, runtime.cipher, stored.source) as connection:
        batches = stream_line_batches(
            connection, stored.query, columns=columns, split=split, lines=lines
        )
        async with aclosing(batches):
            async for batch in batches:
                yield batch


async def stream_audience_members(
    runtime: Runtime,
    *,
    workspace_id: uuid.UUID,
    audience_id: uuid.UUID,
    split_group_id: uuid.UUID | None = None,
    columns: Sequence[str] | None = None,
) -> AsyncIterator[Member]:
    """`(member_key, row)` for each member, one at a time (the batches, unpacked)."""
    batches = stream_audience_member_batches(
        runtime,
        workspace_id=workspace_id,
        audience_id=audience_id,
        split_group_id=split_group_id,
        columns=columns,
    )
    async with aclosing(batches):
        async for batch in batches:
            assert not isinstance(batch, LineBatch)
            for member in batch:
                yield member
