"""The in-memory run event bus: fan-out by run and workspace, and bounded buffers where
progress coalesces to the latest while status events are never dropped."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from app.events import InMemoryEventBus, RunEvent

WORKSPACE = uuid.uuid4()


def event(run_id: uuid.UUID, seq: int, kind: str, **payload: object) -> RunEvent:
    return RunEvent(run_id, WORKSPACE, seq, kind, dict(payload), datetime.now(UTC))


async def test_a_slow_subscriber_gets_the_latest_progress_and_every_status() -> None:
    bus = InMemoryEventBus()
    run = uuid.uuid4()
    slow = await bus.subscribe(run_id=run, limit=4)
    fast = await bus.subscribe(run_id=run)
    seen_fast: list[int] = []
    await bus.publish(event(run, 1, "status", status="running"))
    assert (await fast.get(within=0)).seq == 1  # type: ignore[union-attr]
    for seq in range(2, 12):
        await bus.publish(event(run, seq, "progress", done=seq))
        seen_fast.append((await fast.get(within=0)).seq)  # type: ignore[union-attr]
    await bus.publish(event(run, 12, "status", status="succeeded"))
    # The fast one read along and missed nothing; the slow one holds the gist of it.
    assert seen_fast == list(range(2, 12))
    assert [(e.seq, e.type) for e in slow.pending()] == [
        (1, "status"),
        (11, "progress"),
        (12, "status"),
    ]
    assert slow.coalesced == 9
    assert (await fast.get(within=0)).is_final  # type: ignore[union-attr]
    await bus.close()
    assert await slow.get() is not None and slow.closed


async def test_the_buffer_bound_holds_across_runs_and_status_events_are_kept() -> None:
    bus = InMemoryEventBus()
    runs = [uuid.uuid4() for _ in range(6)]
    watcher = await bus.subscribe(workspace_id=WORKSPACE, limit=3)
    elsewhere = await bus.subscribe(workspace_id=uuid.uuid4())
    for run in runs:
        await bus.publish(event(run, 1, "status", status="running"))
        await bus.publish(event(run, 2, "progress", done=1))
    for run in runs:
        await bus.publish(event(run, 3, "status", status="failed"))
    pending = watcher.pending()
    assert sum(e.type == "progress" for e in pending) == 3
    assert [e.run_id for e in pending if e.type == "status"] == runs + runs
    assert elsewhere.pending() == []
    watcher.close()
    await bus.publish(event(runs[0], 4, "log"))
    assert len(watcher.pending()) == len(pending)


async def test_a_subscriber_that_does_not_coalesce_keeps_every_event_up_to_the_bound() -> None:
    """A run follower wants every event: progress goes only when the buffer overflows."""
    bus = InMemoryEventBus()
    run = uuid.uuid4()
    follower = await bus.subscribe(run_id=run, limit=4, coalesce=False)
    await bus.publish(event(run, 1, "status", status="running"))
    for seq in range(2, 5):
        await bus.publish(event(run, seq, "progress", done=seq))
    assert [e.seq for e in follower.pending()] == [1, 2, 3, 4]
    for seq in range(5, 8):
        await bus.publish(event(run, seq, "progress", done=seq))
    await bus.publish(event(run, 8, "status", status="succeeded"))
    assert [e.seq for e in follower.pending()] == [1, 4, 5, 6, 7, 8]
    assert follower.coalesced == 2
    read = [await follower.get(within=0) for _ in range(7)]
    assert [e.seq if e else None for e in read] == [1, 4, 5, 6, 7, 8, None]
    await bus.close()


async def test_get_times_out_after_its_own_wait_however_the_timer_was_armed() -> None:
    """The quiet timer is re-armed lazily: an earlier, longer wait leaves a timer behind
    that must neither cut a later wait short nor stretch a shorter one."""
    bus = InMemoryEventBus()
    run = uuid.uuid4()
    follower = await bus.subscribe(run_id=run, coalesce=False)
    loop = asyncio.get_running_loop()

    async def publish_soon(seq: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await bus.publish(event(run, seq, "progress", done=seq))

    for seq in (1, 2, 3):  # each wait ends with an event long before its deadline
        task = asyncio.create_task(publish_soon(seq, 0.01))
        got = await follower.get(within=30)
        await task
        assert got is not None and got.seq == seq
    started = loop.time()
    assert await follower.get(within=0.05) is None  # shorter than the timer left behind
    assert 0.04 <= loop.time() - started < 1
    started = loop.time()
    task = asyncio.create_task(publish_soon(4, 0.15))
    got = await follower.get(within=0.3)  # longer than a timer that fires early
    assert got is not None and got.seq == 4 and loop.time() - started >= 0.14
    await task
    assert await follower.get(within=0) is None
    await bus.close()
    assert await follower.get(within=5) is None  # closed: at once


async def test_a_waiting_subscriber_may_take_events_as_they_come_in_order() -> None:
    """`hand_over` sees an event only while the subscriber waits with nothing buffered;
    what it takes is neither buffered nor wakes the subscriber, and what it declines is
    buffered, after which later events queue behind it rather than overtake it."""
    bus = InMemoryEventBus()
    run = uuid.uuid4()
    follower = await bus.subscribe(run_id=run, coalesce=False)
    taken: list[int] = []
    declines = {3}

    def hand_over(event: RunEvent) -> bool:
        if event.seq in declines:
            return False
        taken.append(event.seq)
        return True

    follower.hand_over = hand_over
    await bus.publish(event(run, 1, "progress", done=1))  # not waiting yet: buffered
    assert [e.seq for e in follower.pending()] == [1]
    assert (await follower.get(within=0)).seq == 1  # type: ignore[union-attr]
    waiting = asyncio.create_task(follower.get(within=30))
    await asyncio.sleep(0)  # the subscriber now waits
    await bus.publish(event(run, 2, "progress", done=2))
    assert taken == [2] and follower.pending() == [] and not waiting.done()
    await bus.publish(event(run, 3, "status", status="running"))  # declined: wakes it
    await bus.publish(event(run, 4, "progress", done=4))  # behind 3, not handed over
    assert [e.seq for e in follower.pending()] == [3, 4] and taken == [2]
    assert (await waiting).seq == 3  # type: ignore[union-attr]
    assert (await follower.get(within=0)).seq == 4  # type: ignore[union-attr]
    await bus.close()


async def test_events_handed_over_keep_a_waiting_subscriber_from_timing_out() -> None:
    """`get(within)` answers None only after `within` seconds without any event, counting
    the ones handed over."""
    bus = InMemoryEventBus()
    run = uuid.uuid4()
    follower = await bus.subscribe(run_id=run, coalesce=False)
    follower.hand_over = lambda _: True
    loop = asyncio.get_running_loop()
    started = loop.time()
    waiting = asyncio.create_task(follower.get(within=0.2))
    for seq in range(1, 5):
        await asyncio.sleep(0.1)
        await bus.publish(event(run, seq, "progress", done=seq))
    assert await waiting is None
    assert loop.time() - started >= 0.55  # 0.2 s after the last event, at about 0.4 s
    await bus.close()
