"""Server pings on graphql-transport-ws: one task for every open connection of the process.

A ping keeps an idle socket open through proxies, and a write to a vanished client fails.
A sleeping task per socket costs about 1.5 KB (its coroutine, timer and future) for each of
a thousand subscribers (issue 5); this one task wakes every `interval` seconds and asks each
registered connection to send its ping. A connection is pinged every `interval` seconds
from its first tick on, so at most `interval` seconds after it registered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("signalsmith.graphql")


class Pinged(Protocol):
    def send_keepalive(self) -> None:
        """Send a ping now, or start sending it; never wait."""
        ...


class KeepAlive:
    """Pings the registered connections every `interval` seconds, from one task that runs
    while any is registered (on the event loop of the first, as the server has one)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        #: Registered connections, in order (a dict as an ordered set).
        self._connections: dict[Pinged, None] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: Pinged) -> None:
        self._connections[connection] = None
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def discard(self, connection: Pinged) -> None:
        self._connections.pop(connection, None)
        if not self._connections and self._task is not None:
            self._task.cancel()
            self._task = None

    def __len__(self) -> int:
        return len(self._connections)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for connection in list(self._connections):
                if connection in self._connections:  # not gone while others were pinged
                    try:
                        connection.send_keepalive()
                    except Exception:  # one connection's bug must not stop the others' pings
                        log.exception("could not ping a WebSocket connection")
