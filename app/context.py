"""What every service function receives: the session, the caller and the process resources."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.crypto import CredentialCipher
from app.db import Database
from app.events import RunEventBus
from app.queue import RunQueue
from app.settings import Settings


@dataclass(frozen=True)
class ServiceContext:
    session: AsyncSession
    principal: Principal
    cipher: CredentialCipher
    settings: Settings
    queue: RunQueue
    events: RunEventBus
    #: For work that outlives the request's session (a subscription's later reads).
    database: Database
