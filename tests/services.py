"""Real PostgreSQL and Redis for the tests: each run gets its own database / key prefix."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "SIGNALSMITH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SIGNALSMITH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def require_reachable(name: str, url: str) -> None:
    """Fail (never skip) with the command that starts the service."""
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 0), timeout=3
        ).close()
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable at {parts.hostname}:{parts.port} ({exc}). Start it with: "
            f"{HOW_TO_START[name]}  (or bash .ci/run, which starts it)",
            pytrace=False,
        )


def postgres_url_with_password(password: str) -> str:
    """The test server's URL with a password in it: a reachable source whose password the
    server ignores (trust authentication), for tests that prove a password never leaks."""
    parts = urlsplit(POSTGRES_ADMIN_URL)
    user = parts.username or "postgres"
    host = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return f"postgresql://{user}:{password}@{host}{parts.path}"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
