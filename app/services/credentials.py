"""Key rotation for stored credentials."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.crypto import CredentialCipher
from models import Destination, Source


async def rotate_credentials(session: AsyncSession, cipher: CredentialCipher) -> int:
    """Re-encrypt every source and destination config under the newest key."""
    count = 0
    for source in (await session.execute(select(Source))).scalars():
        source.config_encrypted = cipher.rotate(source.config_encrypted)
        count += 1
    for destination in (await session.execute(select(Destination))).scalars():
        destination.config_encrypted = cipher.rotate(destination.config_encrypted)
        count += 1
    await session.commit()
    return count
