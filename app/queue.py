"""Where triggered runs go: arq over Redis when configured, else tasks in this process.

Both call the same job function; the arq job id is the run id, so a run is enqueued at most
once however often it is asked for.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings

EXECUTE_RUN = "execute_run"

Execute = Callable[[uuid.UUID], Coroutine[Any, Any, None]]


def serialize_job(value: Any) -> bytes:
    """Jobs travel as JSON, never pickle: a Redis writer cannot make a worker run code."""
    return json.dumps(value, default=str).encode()


def deserialize_job(data: bytes) -> Any:
    return json.loads(data)


def run_job_id(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


class RunQueue(Protocol):
    async def enqueue(self, run_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Runs execute as tasks of this event loop (the embedded default)."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute
        self._tasks: set[asyncio.Task[None]] = set()

    async def enqueue(self, run_id: uuid.UUID) -> None:
        task = asyncio.create_task(self._execute(run_id), name=run_job_id(run_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every run started so far (shutdown, and tests that wait on an event)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()


class ArqQueue:
    """Runs execute on `signalsmith worker` processes."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._queue_name = queue_name
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def enqueue(self, run_id: uuid.UUID) -> None:
        async with self._lock:
            if self._pool is None:
                self._pool = await create_pool(
                    self._settings,
                    default_queue_name=self._queue_name,
                    job_serializer=serialize_job,
                    job_deserializer=deserialize_job,
                )
        await self._pool.enqueue_job(EXECUTE_RUN, str(run_id), _job_id=run_job_id(run_id))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
