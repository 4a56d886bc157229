"""Credentials at rest: encryption, key rotation, the dev key file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.crypto import KEY_FILE_NAME, CredentialCipher, load_keys
from app.settings import Settings


def test_round_trip_and_ciphertext_hides_the_value() -> None:
    cipher = CredentialCipher([Fernet.generate_key().decode()])
    token = cipher.encrypt({"secret": "canary-123"})
    assert "canary-123" not in token
    assert cipher.decrypt(token) == {"secret": "canary-123"}


def test_rotation_moves_tokens_to_the_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = CredentialCipher([old]).encrypt({"k": "v"})
    both = CredentialCipher([new, old])
    assert both.decrypt(token) == {"k": "v"}
    rotated = both.rotate(token)
    assert CredentialCipher([new]).decrypt(rotated) == {"k": "v"}
    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        CredentialCipher([new]).decrypt(token)


def test_dev_key_is_generated_once_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", secret_key=None)
    first = load_keys(settings)
    assert load_keys(settings) == first
    key_file = tmp_path / KEY_FILE_NAME
    assert key_file.read_text().strip() == first[0]
    assert key_file.stat().st_mode & 0o077 == 0


def test_configured_keys_are_comma_separated() -> None:
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert load_keys(Settings(secret_key=f"{a}, {b}")) == [a, b]
