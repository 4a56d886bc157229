"""arq worker settings: a thin shell whose jobs call into `app` (STYLE: thin jobs).

The runtime (database, cipher, settings) is created once in `on_startup` and shared by every
job through arq's `ctx`. Jobs and results are JSON, never pickle.

A run needs Redis only to be picked up: the engine works on the database and the destination,
so a Redis restart does not disturb the runs in flight. The worker's own Redis commands retry
with backoff for about a minute, so it rides out a restart and goes on polling.
"""

from __future__ import annotations

import uuid
from typing import Any

from arq.connections import RedisSettings
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from sqlalchemy import text

from app.queue import deserialize_job, serialize_job
from app.runtime import Runtime
from app.settings import Settings


async def ping(_ctx: dict[str, Any]) -> str:
    return "pong"


async def execute_run(ctx: dict[str, Any], run_id: str) -> None:
    runtime: Runtime = ctx["runtime"]
    await runtime.execute_run(uuid.UUID(run_id))


#: Seconds arq grants a run beyond the run timeout (the engine stops itself at the first
#: batch boundary past it; arq cancelling the job is only the backstop).
JOB_TIMEOUT_GRACE = 900.0


async def warm_up(runtime: Runtime) -> None:
    """What the first run would otherwise wait for before it starts: the engine's modules
    (the connectors, the sources) imported, and a database connection in the pool."""
    import app.services.run_execution  # noqa: F401

    async with runtime.database.session() as session:
        await session.execute(text("SELECT 1"))


def redis_settings(redis_url: str) -> RedisSettings:
    """The worker's Redis connection: connecting and commands retry through a refused or
    broken connection (about a minute of backoff, at most 2 s a wait) rather than letting
    the first failed poll stop the worker."""
    settings = RedisSettings.from_dsn(redis_url)
    settings.retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=35)
    # OSError: a refused connect is retried too (redis-py retries only its own errors).
    settings.retry_on_error = [redis_errors.ConnectionError, redis_errors.TimeoutError, OSError]
    return settings


def worker_settings(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = runtime = Runtime(settings)
        await warm_up(runtime)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["runtime"].close()

    return {
        "functions": [ping, execute_run],
        "redis_settings": redis_settings(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": startup,
        "on_shutdown": shutdown,
        # A live UI wants a run to start at once: poll often (arq's default is 0.5 s). A poll
        # is two Redis round trips (new jobs, aborted jobs): every 20 ms costs an idle worker
        # about 2 % of a core, and a run waits 10 ms for it on average.
        "poll_delay": 0.02,
        "job_serializer": serialize_job,
        "job_deserializer": deserialize_job,
        "max_jobs": 4,
        # arq's default (300 s) would cancel every long run; the run timeout governs instead.
        "job_timeout": settings.run_timeout_seconds + JOB_TIMEOUT_GRACE,
        "allow_abort_jobs": True,
    }
