"""Batches in flight: at most `concurrency` of a run at once, committed in groups.

`send` hands a batch over and returns once it is on its way (after waiting for a free slot);
the delivery runs as a task. One committer records what the destination acknowledged: every
batch that landed since its last commit goes into the next one, so a commit costs one
transaction whatever the number of batches it records. A slot is freed only when its batch
is committed, so at any moment at most `concurrency` batches are sent but not recorded: what
a crash can make a later run send again.

The first failure stops the dispatch: a delivery that raised (access denied, a bug), a
commit that raised, or a commit that stopped the run (`RunStopped`: cancelled, timed out).
Nothing more is sent after it; `close` waits for the batches already in flight, commits
those that land (unless the database itself failed), then raises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.destinations.base import Operation
from app.destinations.delivery import Delivery
from app.sync.job import RunStopped

Item = TypeVar("Item")


@dataclass(frozen=True)
class Landed(Generic[Item]):
    """A batch the destination answered, with what became of each row."""

    operation: Operation
    items: Sequence[Item]
    delivery: Delivery


class Dispatch(Generic[Item]):
    def __init__(
        self,
        concurrency: int,
        deliver: Callable[[Operation, Sequence[Item]], Awaitable[Delivery]],
        commit: Callable[[list[Landed[Item]]], Awaitable[None]],
    ) -> None:
        self._deliver = deliver
        self._commit = commit
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._flying: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._landed: list[Landed[Item]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._commit_failed = False
        self._committer = asyncio.create_task(self._commit_landed())
        #: The most batches that were ever in flight at once (for tests and benchmarks).
        self.peak = 0

    async def send(self, operation: Operation, items: Sequence[Item]) -> None:
        """Send a batch once a slot is free; raises what stopped the dispatch, if anything
        did, instead of sending."""
        self.check()
        await self._slots.acquire()
        if self._error is not None:
            self._slots.release()
            self.check()
        self._in_flight += 1
        self.peak = max(self.peak, self._in_flight)
        task = asyncio.create_task(self._fly(operation, items))
        self._flying.add(task)
        task.add_done_callback(self._flying.discard)

    async def close(self) -> None:
        """Wait for every batch in flight and its commit, then raise what stopped the
        dispatch (if anything did)."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.shield(self._committer)
        except asyncio.CancelledError:
            await self.abort()
            raise
        self.check()

    async def abort(self) -> None:
        """Cancel everything in flight (the run itself is being cancelled)."""
        tasks = (*self._flying, self._committer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _fly(self, operation: Operation, items: Sequence[Item]) -> None:
        try:
            delivery = await self._deliver(operation, items)
        except asyncio.CancelledError:
            self._slots.release()
            raise
        except Exception as exc:
            self._stop(exc)
            self._slots.release()
        else:
            self._landed.append(Landed(operation, items, delivery))
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def _commit_landed(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            landed, self._landed = self._landed, []
            if landed:
                await self._record(landed)
            if self._closing and not self._in_flight and not self._landed:
                return

    async def _record(self, landed: list[Landed[Item]]) -> None:
        try:
            if not self._commit_failed:
                await self._commit(landed)
        except RunStopped as stop:  # raised after its commit: the batches stay recorded
            self._stop(stop)
        except Exception as exc:
            self._commit_failed = True
            self._stop(exc)
        finally:
            for _ in landed:
                self._slots.release()

    def _stop(self, error: BaseException) -> None:
        if self._error is None or (
            isinstance(self._error, RunStopped) and not isinstance(error, RunStopped)
        ):
            self._error = error  # a failure outranks a stop: the run fails with it

    def check(self) -> None:
        """Raise what stopped the dispatch, if anything did."""
        if self._error is not None:
            raise self._error


async def closing(dispatch: Dispatch[Item], body: Awaitable[None]) -> None:
    """Run `body` (which sends through `dispatch`), then close the dispatch, whatever `body`
    did: a body that raised still waits for its batches in flight to be recorded."""
    try:
        await body
    except asyncio.CancelledError:
        await dispatch.abort()
        raise
    except BaseException as stopped:
        try:
            await dispatch.close()
        except Exception as failure:
            if isinstance(stopped, RunStopped) and not isinstance(failure, RunStopped):
                raise failure from None  # a failure outranks a stop
        raise
    await dispatch.close()
