"""Process-wide resources (settings, database, cipher) and opening a service context."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.auth import authenticate, parse_bearer
from app.context import ServiceContext
from app.crypto import CredentialCipher, load_keys
from app.db import Database
from app.events import RunEventBus, create_event_bus
from app.queue import ArqQueue, InProcessQueue, RunQueue
from app.settings import Settings


class Runtime:
    """Created once per process (API or worker) and shared by every request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.cipher = CredentialCipher(load_keys(settings))
        self.queue: RunQueue = (
            ArqQueue(settings.redis_url, settings.queue_name)
            if settings.redis_url
            else InProcessQueue(self.execute_run)
        )
        self.events: RunEventBus = create_event_bus(settings.redis_url, settings.queue_name)

    async def execute_run(self, run_id: uuid.UUID) -> None:
        """The job function: execute one queued run (in-process, or on an arq worker)."""
        from app.services.run_execution import execute_run

        await execute_run(self, run_id)

    @asynccontextmanager
    async def context(self, authorization: str | None) -> AsyncIterator[ServiceContext]:
        """Authenticate the bearer token and yield a context bound to a fresh session."""
        secret = parse_bearer(authorization)
        async with self.database.session() as session:
            principal = await authenticate(session, secret)
            yield ServiceContext(
                session=session,
                principal=principal,
                cipher=self.cipher,
                settings=self.settings,
                queue=self.queue,
                events=self.events,
                database=self.database,
            )

    async def close(self) -> None:
        await self.queue.close()
        await self.events.close()
        await self.database.dispose()
