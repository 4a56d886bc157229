"""The run event bus: a stored `SyncRunEvent` reaches live subscribers (DESIGN §1, §4).

Events are published only after the transaction that stored them commits, so a subscriber
never sees an event the table does not hold. With Redis, every event crosses processes on
one pub/sub channel (named after the deployment's queue) and each process keeps ONE Redis
subscription, fanned out in-process to its local subscribers; without Redis the bus is in
memory. Delivery is best effort: the table is the truth, and followers replay from it.

Each subscriber has its own bounded buffer, filled without awaiting, so a slow subscriber
never delays the publisher or the others: a progress event replaces the run's previous one
still waiting in the buffer (counts are cumulative, the latest says it all), while status,
phase, log and error events are never dropped. A subscriber that wants every event (a run
follower) asks not to coalesce: its progress events are dropped only past the buffer's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.runs import TERMINAL_STATUSES, Publish
from models import SyncRunEvent

log = logging.getLogger("signalsmith.events")

PROGRESS = "progress"
STATUS = "status"
FINAL_STATUSES = frozenset(status.value for status in TERMINAL_STATUSES)
#: Progress events a subscriber may hold unread before the oldest is dropped.
DEFAULT_BUFFER = 64


@dataclass(frozen=True)
class RunEvent:
    """A stored run event as it travels: which run (and workspace) and what happened."""

    run_id: uuid.UUID
    workspace_id: uuid.UUID
    seq: int
    type: str
    payload: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, event: SyncRunEvent, workspace_id: uuid.UUID) -> RunEvent:
        return cls(event.run_id, workspace_id, event.seq, event.type, event.payload, event.at)

    @property
    def is_final(self) -> bool:
        """The run's terminal status event: nothing follows it."""
        return self.type == STATUS and self.payload.get("status") in FINAL_STATUSES

    def to_json(self) -> str:
        """The bus message; `published_at` (epoch seconds, now) lets a reader measure how
        long delivery took (bench/fanout.py). `from_json` ignores it."""
        return json.dumps(
            {
                "run_id": str(self.run_id),
                "workspace_id": str(self.workspace_id),
                "seq": self.seq,
                "type": self.type,
                "payload": self.payload,
                "at": self.at.isoformat(),
                "published_at": time.time(),
            },
            default=str,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunEvent:
        data = json.loads(raw)
        return cls(
            run_id=uuid.UUID(data["run_id"]),
            workspace_id=uuid.UUID(data["workspace_id"]),
            seq=int(data["seq"]),
            type=str(data["type"]),
            payload=dict(data["payload"]),
            at=datetime.fromisoformat(data["at"]),
        )


class Subscription:
    """One local subscriber's buffer; iterate it, or `get` with a timeout.

    A subscriber may also take events as they come (`hand_over`): while it waits in `get`
    with nothing buffered, each event it accepts is first offered to `hand_over`, and one
    that `hand_over` takes (returns True) is not buffered and does not wake it. Nothing is
    handed over while anything is buffered or the subscriber is busy with an earlier event,
    so events still reach it in order."""

    __slots__ = (
        "_coalesce",
        "_events",
        "_handed_over_at",
        "_limit",
        "_timer",
        "_unsubscribe",
        "_waiter",
        "closed",
        "coalesced",
        "hand_over",
        "run_id",
        "workspace_id",
    )

    def __init__(
        self,
        run_id: uuid.UUID | None,
        workspace_id: uuid.UUID | None,
        limit: int,
        unsubscribe: Callable[[Subscription], None],
        coalesce: bool = True,
    ) -> None:
        self.run_id = run_id
        self.workspace_id = workspace_id
        self._limit = limit
        self._coalesce = coalesce
        self._unsubscribe = unsubscribe
        # Created when first needed: a subscriber holds little while it waits (issue 5).
        self._events: deque[RunEvent] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handed_over_at = 0.0
        self.hand_over: Callable[[RunEvent], bool] | None = None
        self.closed = False
        #: Progress events replaced or dropped before they were read.
        self.coalesced = 0

    def accepts(self, event: RunEvent) -> bool:
        return (self.run_id is None or event.run_id == self.run_id) and (
            self.workspace_id is None or event.workspace_id == self.workspace_id
        )

    def offer(self, event: RunEvent) -> None:
        """Buffer `event` (or hand it over) if this subscriber wants it; never blocks."""
        if self.closed or not self.accepts(event):
            return
        events = self._events
        if not events:
            waiter = self._waiter
            if self.hand_over is not None and waiter is not None and not waiter.done():
                if self.hand_over(event):
                    self._handed_over_at = waiter.get_loop().time()
                    return
            if events is None:
                events = self._events = deque()
        if event.type == PROGRESS:
            if self._coalesce:
                self._supersede(events, event.run_id)
            if self._progress_count(events) >= self._limit:
                self._drop_oldest_progress(events)
        events.append(event)
        self._wake()

    def _supersede(self, events: deque[RunEvent], run_id: uuid.UUID) -> None:
        """Drop the run's unread progress event if it is the run's latest buffered event."""
        for index in range(len(events) - 1, -1, -1):
            earlier = events[index]
            if earlier.run_id == run_id:
                if earlier.type == PROGRESS:
                    del events[index]
                    self.coalesced += 1
                return

    @staticmethod
    def _progress_count(events: deque[RunEvent]) -> int:
        return sum(1 for event in events if event.type == PROGRESS)

    def _drop_oldest_progress(self, events: deque[RunEvent]) -> None:
        for index, event in enumerate(events):
            if event.type == PROGRESS:
                del events[index]
                self.coalesced += 1
                return

    def pending(self) -> list[RunEvent]:
        """What is buffered and unread (for tests and diagnostics)."""
        return list(self._events or ())

    async def get(self, within: float | None = None) -> RunEvent | None:
        """The next event; None after `within` seconds without one (buffered or handed
        over), or once closed.

        The timer is armed lazily: one that would fire after the new deadline is kept, and
        when it fires early it only wakes this loop, which re-arms it for what remains. A
        subscriber that gets an event every few milliseconds then schedules about one timer
        per `within` seconds rather than one per event."""
        if self._events:
            return self._events.popleft()
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while not self._events:
            if self.closed:
                return None
            if deadline is not None and within is not None:
                deadline = max(deadline, self._handed_over_at + within)
                if loop.time() >= deadline:
                    return None
                if self._timer is None or self._timer.when() > deadline:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = loop.call_at(deadline, self._timer_fired)
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._events.popleft()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake()

    def __aiter__(self) -> AsyncIterator[RunEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RunEvent]:
        while (event := await self.get()) is not None:
            yield event

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hand_over = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._wake()
            self._unsubscribe(self)


class RunEventBus(Protocol):
    async def publish(self, event: RunEvent) -> None: ...

    async def subscribe(
        self,
        *,
        run_id: uuid.UUID | None = None,
        workspace_id: uuid.UUID | None = None,
        limit: int = DEFAULT_BUFFER,
        coalesce: bool = True,
    ) -> Subscription: ...

    async def close(self) -> None: ...


def publisher(bus: RunEventBus, workspace_id: uuid.UUID) -> Publish:
    """What `transition_run` and the engine call after commit, for one workspace's run."""

    async def publish(event: SyncRunEvent) -> None:
        await bus.publish(RunEvent.of(event, workspace_id))

    return publish


class LocalFanout:
    """The subscribers of this process and handing each event to the ones it concerns."""

    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()

    def add(
        self,
        run_id: uuid.UUID | None,
        workspace_id: uuid.UUID | None,
        limit: int,
        coalesce: bool = True,
    ) -> Subscription:
        subscription = Subscription(run_id, workspace_id, limit, self.subscribers.discard, coalesce)
        self.subscribers.add(subscription)
        return subscription

    def dispatch(self, event: RunEvent) -> None:
        for subscription in list(self.subscribers):
            subscription.offer(event)

    def close_all(self) -> None:
        for subscription in list(self.subscribers):
            subscription.close()


class InMemoryEventBus:
    """The embedded default: runs execute in this process, so do their subscribers."""

    def __init__(self) -> None:
        self.fanout = LocalFanout()

    async def publish(self, event: RunEvent) -> None:
        self.fanout.dispatch(event)

    async def subscribe(
        self,
        *,
        run_id: uuid.UUID | None = None,
        workspace_id: uuid.UUID | None = None,
        limit: int = DEFAULT_BUFFER,
        coalesce: bool = True,
    ) -> Subscription:
        return self.fanout.add(run_id, workspace_id, limit, coalesce)

    async def close(self) -> None:
        self.fanout.close_all()


class RedisEventBus:
    """Events on one Redis channel; one subscription per process, started by the first
    local subscriber and kept (reconnecting) until the process closes the bus."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.channel = f"{prefix}:run-events"
        self._client = Redis.from_url(redis_url)
        self.fanout = LocalFanout()
        self._listener: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None

    async def publish(self, event: RunEvent) -> None:
        try:
            await self._client.publish(self.channel, event.to_json())
        except Exception:  # the table holds the event; followers replay it
            log.warning("could not publish a run event", exc_info=True)

    async def subscribe(
        self,
        *,
        run_id: uuid.UUID | None = None,
        workspace_id: uuid.UUID | None = None,
        limit: int = DEFAULT_BUFFER,
        coalesce: bool = True,
    ) -> Subscription:
        subscription = self.fanout.add(run_id, workspace_id, limit, coalesce)
        if self._listener is None:
            self._listening = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(self._listening))
        assert self._listening is not None
        # Subscribed before the caller replays the table: nothing falls between the two.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=10)
        return subscription

    async def _listen(self, listening: asyncio.Event) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                listening.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("run event subscription lost; reconnecting", exc_info=True)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, raw: bytes) -> None:
        try:
            event = RunEvent.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed run event on %s", self.channel)
            return
        self.fanout.dispatch(event)

    async def close(self) -> None:
        self.fanout.close_all()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()


def create_event_bus(redis_url: str | None, prefix: str) -> RunEventBus:
    return RedisEventBus(redis_url, prefix) if redis_url else InMemoryEventBus()
