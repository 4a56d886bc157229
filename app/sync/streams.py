"""Helpers for the streams a run reads: reading ahead, and closing them however it ends."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, Generic, TypeVar

log = logging.getLogger("signalsmith.sync")

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


async def nothing() -> AsyncIterator[Any]:
    return
    yield


def closed_by(streams: AsyncExitStack, stream: Any) -> Any:
    """`stream`, closed (when it can be) as `streams` exits: source cursors and database
    connections are released even when the run stops before reading them to the end. A
    stream that fails to close is logged, never put in place of why the run stopped."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:

        async def close() -> None:
            try:
                await aclose()
            except Exception:
                log.warning("could not close a stream of the run", exc_info=True)

        streams.push_async_callback(close)
    return stream


class ReadAhead(Generic[T]):
    """The items of `stream`, read up to `depth` items ahead by a task of their own that starts
    at once, so the database works on the first batches (a sort, say) while the caller is still
    getting ready, and on the next batches while the caller works on this one. `aclose` stops
    the task and closes `stream`."""

    def __init__(self, stream: AsyncIterator[T], depth: int = 2) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for item in self._stream:
                await self._queue.put(item)
        except Exception as exc:
            await self._queue.put(_Failed(exc))
        else:
            await self._queue.put(_END)

    def __aiter__(self) -> ReadAhead[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # asked again: still the end
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            raise item.error
        result: T = item
        return result

    async def aclose(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()
