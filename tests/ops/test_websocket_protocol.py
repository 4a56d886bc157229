"""The WebSocket protocol `serve` runs (`app.websocket_protocol`): uvicorn's websockets-sansio
with the handshake's objects let go and a lighter queue and flag. Served by real uvicorn to
real clients: what the app reads from the handshake, message order, a slow reader, closing,
a refused upgrade, and uvicorn's own keep-alive pings."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from app.websocket_protocol import Flag, Inbox, LeanWebSocketProtocol
from tests.servers import serve_in_thread


class EchoApp:
    """Accepts a socket (choosing the client's first subprotocol), tells it the headers it
    was opened with, then echoes every message; sends `size` bytes when asked "flood:size".
    Keeps each socket's server protocol (`send.__self__`) for the test to look at."""

    def __init__(self) -> None:
        self.protocols: list[Any] = []
        self.disconnects: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        if scope["path"] == "/refuse":
            await send({"type": "websocket.close"})
            return
        self.protocols.append(send.__self__)
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        await send({"type": "websocket.send", "text": json.dumps(headers)})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnects.append(message["code"])
                return
            text = message["text"]
            if text.startswith("flood:"):
                chunk = "x" * 65536
                for _ in range(int(text.split(":")[1]) // len(chunk)):
                    await send({"type": "websocket.send", "text": chunk})
                await send({"type": "websocket.send", "text": "flooded"})
            else:
                await send({"type": "websocket.send", "text": text})


@pytest.fixture
def echo() -> EchoApp:
    return EchoApp()


@pytest.fixture
def echo_url(echo: EchoApp) -> Iterator[str]:
    with serve_in_thread(echo, ws=LeanWebSocketProtocol) as base:
        yield base.replace("http://", "ws://")


async def test_the_app_reads_the_handshake_which_the_server_then_lets_go(
    echo: EchoApp, echo_url: str
) -> None:
    async with connect(
        echo_url + "/socket",
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers={"Authorization": "Bearer abc", "X-Request-Id": "r-1"},
    ) as client:
        assert client.subprotocol == "graphql-transport-ws"
        headers = json.loads(await client.recv())
        assert headers["authorization"] == "Bearer abc" and headers["x-request-id"] == "r-1"
        (protocol,) = echo.protocols
        assert isinstance(protocol, LeanWebSocketProtocol)
        assert not hasattr(protocol, "response") and len(protocol.request.headers) == 0
        # The scope keeps its own copy of the headers, which the app reads.
        assert (b"authorization", b"Bearer abc") in protocol.scope["headers"]
        await client.send("still open")
        assert await client.recv() == "still open"


async def test_messages_arrive_in_order_and_a_slow_reader_gets_everything(
    echo_url: str,
) -> None:
    async with connect(
        echo_url + "/socket", subprotocols=[Subprotocol("a")], max_queue=None, max_size=None
    ) as client:
        await client.recv()
        for i in range(200):  # sent at once: the server queues what the app has not read
            await client.send(str(i))
        assert [await client.recv() for _ in range(200)] == [str(i) for i in range(200)]
        # Far more than the transport buffers: the server's `send` waits while the client
        # does not read (transport paused), and carries on once it does.
        await client.send("flood:8388608")
        await asyncio.sleep(0.5)
        received = [await client.recv() for _ in range(8388608 // 65536 + 1)]
        assert received[-1] == "flooded" and all(len(text) == 65536 for text in received[:-1])
        await client.send("after")
        assert await client.recv() == "after"


async def test_a_client_closing_reaches_the_app(echo: EchoApp, echo_url: str) -> None:
    async with connect(echo_url + "/socket", subprotocols=[Subprotocol("a")]) as client:
        await client.recv()
    for _ in range(100):
        if echo.disconnects:
            break
        await asyncio.sleep(0.05)
    assert echo.disconnects == [1000]


async def test_an_upgrade_the_app_refuses_is_answered_403(echo_url: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(echo_url + "/refuse", subprotocols=[Subprotocol("a")]):
            pass
    assert refused.value.response.status_code == 403


def test_uvicorn_still_pings_and_closes_a_client_that_does_not_answer(echo: EchoApp) -> None:
    """The handshake is let go from `start_keepalive`: uvicorn must still start its pings."""
    with serve_in_thread(echo, ws=LeanWebSocketProtocol, ping=0.2) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(
                b"GET /socket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a\r\n\r\n"
            )
            frames = read_frames(raw)
    response, opcodes = frames[0], [opcode for opcode, _ in frames[1:]]
    assert response.startswith(b"HTTP/1.1 101")
    assert opcodes[0] == 0x1  # the app's text message (the headers)
    assert 0x9 in opcodes  # a ping, left unanswered
    code = struct.unpack("!H", dict(frames[1:])[0x8][:2])[0]
    assert code == 1011  # closed: keepalive ping timeout


def read_frames(raw: socket.socket) -> list[Any]:
    """The HTTP response, then (opcode, payload) of each frame (unmasked, under 64 KB) the
    server sends until its close frame or the end of the connection."""
    reader = raw.makefile("rb")
    response = b""
    while not response.endswith(b"\r\n\r\n"):
        response += reader.readline()
    frames: list[Any] = [response]
    while len(header := reader.read(2)) == 2:
        opcode, length = header[0] & 0x0F, header[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", reader.read(2))[0]
        frames.append((opcode, reader.read(length)))
        if opcode == 0x8:
            break
    return frames


async def test_the_inbox_hands_items_out_in_order_and_survives_a_cancelled_reader() -> None:
    inbox: Inbox[int] = Inbox()
    first = asyncio.create_task(inbox.get())
    second = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    first.cancel()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await second == 1
    assert not inbox.empty() and await inbox.get() == 2 and inbox.empty()
    # A reader woken for an item, but cancelled before it took it, passes it on.
    woken = asyncio.create_task(inbox.get())
    other = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(3)
    woken.cancel()
    assert await other == 3
    with pytest.raises(asyncio.CancelledError):
        await woken


async def test_the_flag_waits_only_while_cleared() -> None:
    flag = Flag()
    flag.set()
    waiting = flag.wait()
    with pytest.raises(StopIteration):  # set: returns without suspending
        waiting.send(None)
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True]
