"""Serving an ASGI app over real HTTP in a background thread, for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn that says when it is listening (tests wait on an event, not a clock)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve_in_thread(
    app: Any, *, ws: str | type[asyncio.Protocol] = "none", ping: float = 20.0
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1:<free port> (its own event loop); yield its base URL. `ws`
    is uvicorn's WebSocket protocol (`LeanWebSocketProtocol` is the one `serve` runs);
    `ping`, the interval and timeout of its WebSocket pings (uvicorn's default)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws=ws,
        ws_ping_interval=ping,
        ws_ping_timeout=ping,
        http="httptools",
        loop="asyncio",
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(timeout=30), "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
