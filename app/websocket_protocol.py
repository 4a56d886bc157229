"""The WebSocket protocol `signalsmith serve` runs: uvicorn's websockets-sansio, holding less
for each open socket (issue 5: a thousand subscribers of one run, most of them idle).

uvicorn keeps the upgrade request and the handshake response (websockets' `Request`,
`Response` and their `Headers`) for the socket's whole life, though it reads them only
until the 101 response is written; the ASGI scope keeps its own copy of the request's
headers, which is what the app reads. It also gives every socket an `asyncio.Queue` for
received messages and an `asyncio.Event` for flow control, five deques in all, allocated
up front. Here the handshake objects are let go once the response is written, and the
queue and event are replaced by `Inbox` and `Flag`, which offer the few methods uvicorn
calls and allocate only while someone waits.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

T = TypeVar("T")


class Inbox(Generic[T]):
    """The part of `asyncio.Queue` uvicorn's protocol uses (`put_nowait`, `get`, `empty`),
    unbounded, FIFO, and without `asyncio.Queue`'s three deques and `Event`."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_next()

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> T:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                elif self._items:
                    self._wake_next()  # woken for an item it will not take now
                raise
        return self._items.pop(0)

    def _wake_next(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class Flag:
    """The part of `asyncio.Event` uvicorn's protocol uses (`set`, `clear`, `wait`): `wait`
    returns at once, without suspending, while the flag is set, as `Event.wait` does."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol (pass the class as uvicorn's `ws`), without the
    handshake's objects once the handshake is done, and with a lighter queue and flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    def start_keepalive(self) -> None:
        """uvicorn calls this once, right after it wrote the 101 response: the request and
        the response are not read again (`send` reads the response only before that)."""
        super().start_keepalive()
        self.release_handshake()

    def release_handshake(self) -> None:
        # websockets' parser keeps the request in a local variable of its (lifelong)
        # generator, so dropping our reference alone would free nothing: empty its headers.
        self.request.headers.clear()
        del self.response
