"""Fixtures of the run tests: a real webhook receiver, and a runtime allowed to reach it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.runtime import Runtime
from app.settings import Settings
from tests.destinations.receiver import Receiver
from tests.servers import serve_in_thread


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(secret="hook-secret")


@pytest.fixture
def hook_url(receiver: Receiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


@pytest.fixture
async def local_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime that may send to 127.0.0.1 (where the test receiver listens)."""
    runtime = Runtime(settings.model_copy(update={"allow_private_destinations": True}))
    yield runtime
    await runtime.close()
