"""Process-wide resources (settings, database, cipher) and opening a service context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.auth import authenticate, parse_bearer
from app.context import ServiceContext
from app.crypto import CredentialCipher, load_keys
from app.db import Database
from app.settings import Settings


class Runtime:
    """Created once per process (API or worker) and shared by every request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        self.cipher = CredentialCipher(load_keys(settings))

    @asynccontextmanager
    async def context(self, authorization: str | None) -> AsyncIterator[ServiceContext]:
        """Authenticate the bearer token and yield a context bound to a fresh session."""
        secret = parse_bearer(authorization)
        async with self.database.session() as session:
            principal = await authenticate(session, secret)
            yield ServiceContext(
                session=session, principal=principal, cipher=self.cipher, settings=self.settings
            )

    async def close(self) -> None:
        await self.database.dispose()
