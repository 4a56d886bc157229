"""arq worker settings: a thin shell whose jobs call into `app` (STYLE: thin jobs).

The runtime (database, cipher, settings) is created once in `on_startup` and shared by every
job through arq's `ctx`. Jobs and results are JSON, never pickle.
"""

from __future__ import annotations

import uuid
from typing import Any

from arq.connections import RedisSettings

from app.queue import deserialize_job, serialize_job
from app.runtime import Runtime
from app.settings import Settings


async def ping(_ctx: dict[str, Any]) -> str:
    return "pong"


async def execute_run(ctx: dict[str, Any], run_id: str) -> None:
    runtime: Runtime = ctx["runtime"]
    await runtime.execute_run(uuid.UUID(run_id))


def worker_settings(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["runtime"] = Runtime(settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["runtime"].close()

    return {
        "functions": [ping, execute_run],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": startup,
        "on_shutdown": shutdown,
        # A live UI wants a run to start at once: poll often (arq's default is 0.5 s).
        "poll_delay": 0.05,
        "job_serializer": serialize_job,
        "job_deserializer": deserialize_job,
        "max_jobs": 4,
        "allow_abort_jobs": True,
    }
