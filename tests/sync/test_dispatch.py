"""The dispatch on its own: the bound on batches in flight, commits that group what landed,
and what stops it (a delivery that raises, a commit that stops the run or fails)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.destinations.base import AccessDenied, Operation
from app.destinations.delivery import Delivery
from app.sync.dispatch import Dispatch, Landed, closing
from app.sync.job import RunStopped
from models.enums import RunStatus


class Destination:
    """Acknowledges every batch after `delay`; raises for a batch holding `deny`."""

    def __init__(self, delay: float = 0.01, deny: int | None = None) -> None:
        self.delay, self.deny = delay, deny
        self.in_flight = self.most_in_flight = 0
        self.answered: list[int] = []

    async def deliver(self, operation: Operation, items: Sequence[int]) -> Delivery:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.deny in items:
                raise AccessDenied("no")
        finally:
            self.in_flight -= 1
        self.answered.extend(items)
        return Delivery(tuple(map(str, items)), (), (), 1)


class Ledger:
    """Records what each commit holds; can stop the run or fail after `after` commits."""

    def __init__(self, stop_after: int | None = None, fail_after: int | None = None) -> None:
        self.commits: list[list[int]] = []
        self.stop_after, self.fail_after = stop_after, fail_after

    async def commit(self, landed: list[Landed[int]]) -> None:
        if self.fail_after is not None and len(self.commits) >= self.fail_after:
            raise OSError("the database went away")
        await asyncio.sleep(0.005)
        self.commits.append([item for flight in landed for item in flight.items])
        if self.stop_after is not None and len(self.commits) >= self.stop_after:
            raise RunStopped(RunStatus.cancelled)

    @property
    def recorded(self) -> list[int]:
        return sorted(item for commit in self.commits for item in commit)


async def send_all(dispatch: Dispatch[int], batches: int, size: int = 2) -> None:
    for start in range(0, batches * size, size):
        await dispatch.send(Operation.add, list(range(start, start + size)))


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_at_most_concurrency_batches_in_flight_and_every_one_recorded(
    concurrency: int,
) -> None:
    destination, ledger = Destination(), Ledger()
    dispatch = Dispatch(concurrency, destination.deliver, ledger.commit)
    await closing(dispatch, send_all(dispatch, 20))
    assert destination.most_in_flight == dispatch.peak == concurrency
    assert ledger.recorded == list(range(40)) == sorted(destination.answered)
    if concurrency > 1:
        assert len(ledger.commits) < 20  # batches that landed together, committed together


async def test_a_delivery_that_raises_stops_sending_and_the_others_are_recorded() -> None:
    destination, ledger = Destination(deny=10), Ledger()
    dispatch = Dispatch(3, destination.deliver, ledger.commit)
    with pytest.raises(AccessDenied):
        await closing(dispatch, send_all(dispatch, 20))
    assert 10 not in ledger.recorded and ledger.recorded == sorted(destination.answered)
    assert max(destination.answered) < 10 + 3 * 2  # nothing sent once it was known


async def test_a_commit_that_stops_the_run_still_records_the_batches_in_flight() -> None:
    destination, ledger = Destination(delay=0.02), Ledger(stop_after=1)
    dispatch = Dispatch(4, destination.deliver, ledger.commit)
    with pytest.raises(RunStopped):
        await closing(dispatch, send_all(dispatch, 20))
    assert ledger.recorded == sorted(destination.answered)  # acknowledged: recorded
    assert len(destination.answered) < 40


async def test_after_a_failed_commit_nothing_more_is_committed() -> None:
    destination, ledger = Destination(delay=0.02), Ledger(fail_after=1)
    dispatch = Dispatch(4, destination.deliver, ledger.commit)
    with pytest.raises(OSError, match="went away"):
        await closing(dispatch, send_all(dispatch, 20))
    assert len(ledger.commits) == 1 and len(destination.answered) < 40


async def test_a_failure_outranks_a_stop_of_the_body() -> None:
    destination, ledger = Destination(deny=0), Ledger()
    dispatch = Dispatch(2, destination.deliver, ledger.commit)

    async def body() -> None:
        await dispatch.send(Operation.add, [0, 1])
        raise RunStopped(RunStatus.failed, "removal_guard")

    with pytest.raises(AccessDenied):
        await closing(dispatch, body())


async def test_cancelling_the_run_cancels_the_batches_in_flight() -> None:
    destination, ledger = Destination(delay=10), Ledger()
    dispatch = Dispatch(2, destination.deliver, ledger.commit)
    running = asyncio.create_task(closing(dispatch, send_all(dispatch, 4)))
    await asyncio.sleep(0.05)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert ledger.commits == [] and destination.in_flight == 0
