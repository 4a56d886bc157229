"""Credentials at rest: Fernet with rotatable keys (the first key encrypts, all decrypt)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.settings import Settings

KEY_FILE_NAME = "signalsmith.key"


class CredentialCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:  # a key was removed before rotation finished
            raise RuntimeError(
                "stored credentials cannot be decrypted with the configured keys"
            ) from exc
        return data

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()


def load_keys(settings: Settings) -> list[str]:
    """Keys from `SIGNALSMITH_SECRET_KEY`, or a dev key kept beside the SQLite file."""
    if settings.secret_key:
        return [key.strip() for key in settings.secret_key.split(",") if key.strip()]
    path = settings.data_dir / KEY_FILE_NAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, Fernet.generate_key().decode())
    return [path.read_text().strip()]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
