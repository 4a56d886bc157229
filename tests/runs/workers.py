"""A Redis-backed runtime and the environment a `signalsmith worker` process shares with it."""

from __future__ import annotations

import os

from app.runtime import Runtime
from app.settings import Settings
from tests.services import REDIS_URL, require_reachable, unique_name


def redis_runtime(settings: Settings, secret_key: str) -> tuple[Runtime, dict[str, str], str]:
    """(runtime, worker environment, queue name): same database, key and queue of its own."""
    require_reachable("Redis", REDIS_URL)
    queue = unique_name("signalsmith:test")
    runtime = Runtime(
        settings.model_copy(
            update={"redis_url": REDIS_URL, "queue_name": queue, "allow_private_destinations": True}
        )
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")},
        "SIGNALSMITH_DATABASE_URL": settings.database_url,
        "SIGNALSMITH_SECRET_KEY": secret_key,
        "SIGNALSMITH_REDIS_URL": REDIS_URL,
        "SIGNALSMITH_QUEUE_NAME": queue,
        "SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS": "true",
        "SIGNALSMITH_SOURCE_FILES_DIR": str(settings.resolved_source_files_dir),
    }
    return runtime, env, queue
