"""arq worker settings. Run jobs land with the run engine; `ping` proves a worker is alive."""

from __future__ import annotations

from typing import Any

from arq.connections import RedisSettings

from app.settings import Settings


async def ping(_ctx: dict[str, Any]) -> str:
    return "pong"


def worker_settings(settings: Settings) -> dict[str, Any]:
    assert settings.redis_url
    return {
        "functions": [ping],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "poll_delay": 0.05,
    }
