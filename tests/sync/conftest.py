"""Fixtures of the engine tests: a real webhook receiver over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.destinations.receiver import Receiver
from tests.servers import serve_in_thread


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def hook_url(receiver: Receiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"
