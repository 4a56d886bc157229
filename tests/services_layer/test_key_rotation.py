"""Rotating the credentials key re-encrypts every stored source and destination config."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.fernet import Fernet
from sqlmodel import select

from app.crypto import CredentialCipher, load_keys
from app.runtime import Runtime
from app.services.credentials import rotate_credentials
from models import Destination, Source
from tests.factories import World


async def stored(runtime: Runtime, cipher: CredentialCipher) -> dict[uuid.UUID, dict[str, Any]]:
    async with runtime.database.session() as session:
        rows = [*(await session.execute(select(Destination))).scalars()]
        rows += [*(await session.execute(select(Source))).scalars()]
        return {row.id: cipher.decrypt(row.config_encrypted) for row in rows}


async def test_rotation_moves_every_credential_to_the_new_key(
    runtime: Runtime, world: World
) -> None:
    old_keys, new_key = load_keys(runtime.settings), Fernet.generate_key().decode()
    before = await stored(runtime, CredentialCipher(old_keys))
    assert world.destination_id in before and world.source_id in before
    # What an operator configures to rotate: the new key first, the old ones still accepted.
    async with runtime.database.session() as session:
        count = await rotate_credentials(session, CredentialCipher([new_key, *old_keys]))
    assert count == len(before)
    assert await stored(runtime, CredentialCipher([new_key])) == before
    # Rotate back so the runtime's own key serves the tests that follow.
    async with runtime.database.session() as session:
        await rotate_credentials(session, CredentialCipher([*old_keys, new_key]))
    assert await stored(runtime, CredentialCipher(old_keys)) == before
