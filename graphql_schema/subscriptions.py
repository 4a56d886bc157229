"""Subscription roots: thin adapters over `app.services.run_events` (replay, then tail)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import strawberry

from app.events import RunEvent
from app.services import run_events
from graphql_schema.context import Info
from graphql_schema.scalars import parse_id
from graphql_schema.types.sync_run import SyncRun
from graphql_schema.types.sync_run_event import SyncRunEvent


class LiveRunEvents:
    """`syncRunEvents`' source stream: the run follower's events as `SyncRunEvent`s. The
    follower opens on the first `__anext__` (so a refusal is the stream's first result, as
    from a generator); a transport that can deliver results itself (`deliver_directly`,
    see `graphql_schema.shared_results`) is handed the follower's caught-up live events."""

    __slots__ = ("_deliver", "_open", "_stream")

    def __init__(
        self,
        open_stream: Callable[
            [Callable[[RunEvent], bool] | None], Awaitable[AsyncGenerator[RunEvent, None]]
        ],
    ) -> None:
        self._open: Any = open_stream
        self._stream: AsyncGenerator[RunEvent, None] | None = None
        self._deliver: Callable[[Any], bool] | None = None

    def deliver_directly(self, deliver: Callable[[Any], bool]) -> None:
        self._deliver = deliver

    def _hand_over(self, event: RunEvent) -> bool:
        assert self._deliver is not None
        return self._deliver(_root_of(event))

    def __aiter__(self) -> AsyncIterator[SyncRunEvent]:
        return self

    async def __anext__(self) -> SyncRunEvent:
        if self._stream is None:
            self._stream = await self._open(None if self._deliver is None else self._hand_over)
            self._open = None
        return SyncRunEvent.from_event(await anext(self._stream))

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()


_last_root: tuple[RunEvent | None, SyncRunEvent | None] = (None, None)


def _root_of(event: RunEvent) -> SyncRunEvent:
    """The event's root value, built once while one event is handed to every subscriber."""
    global _last_root
    seen, root = _last_root
    if seen is not event or root is None:
        root = SyncRunEvent.from_event(event)
        _last_root = (event, root)
    return root


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The run's stored events after `after`, then live ones, without gaps or "
        "duplicates; completes after the terminal status event."
    )
    def sync_run_events(
        self, info: Info, run_id: strawberry.ID, after: int | None = None
    ) -> AsyncIterator[SyncRunEvent]:
        def open_stream(
            hand_over: Callable[[RunEvent], bool] | None,
        ) -> Awaitable[AsyncGenerator[RunEvent, None]]:
            return info.context.stream(
                run_events.follow_run_events,
                run_id=parse_id(run_id, "runId"),
                after=after or 0,
                hand_over=hand_over,
            )

        return LiveRunEvents(open_stream)

    @strawberry.subscription(
        description="A snapshot of a run of the workspace whenever one changes."
    )
    async def workspace_run_updates(
        self, info: Info, workspace_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SyncRun, None]:
        workspace = None if workspace_id is None else parse_id(workspace_id, "workspaceId")
        stream = await info.context.stream(run_events.follow_workspace_runs, workspace_id=workspace)
        async with aclosing(stream):
            async for run in stream:
                yield SyncRun.from_row(run)
