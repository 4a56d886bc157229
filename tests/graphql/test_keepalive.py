"""Server pings on graphql-transport-ws (`graphql_schema.keepalive`: one task pings every
socket) and the connection-init timeout, over real sockets served by uvicorn."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.asgi import create_app
from app.metrics import Metrics
from app.runtime import Runtime
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from graphql_schema.app import GraphQLApp
from tests.factories import World
from tests.servers import serve_in_thread

INTERVAL = 0.2


@dataclass
class Served:
    url: str
    view: GraphQLApp


def graphql_view(app: Starlette) -> GraphQLApp:
    route = next(route for route in app.routes if isinstance(route, WebSocketRoute))
    assert isinstance(route.endpoint, GraphQLApp)
    return route.endpoint


@pytest.fixture
def pinging(settings: Settings) -> Iterator[Served]:
    """The app as `serve` runs it, pinging every INTERVAL seconds."""
    app = create_app(settings.model_copy(update={"ws_keepalive_seconds": INTERVAL}))
    view = graphql_view(app)
    view.connection_init_wait_timeout = dt.timedelta(seconds=1)
    with serve_in_thread(app, ws=LeanWebSocketProtocol) as base:
        yield Served(base.replace("http://", "ws://") + "/graphql", view)


async def opened(url: str) -> ClientConnection:
    return await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])


async def acknowledged(url: str, token: str) -> ClientConnection:
    socket = await opened(url)
    payload = {"Authorization": f"Bearer {token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


async def pings(socket: ClientConnection, count: int) -> None:
    """Receive `count` pings (answering each), each within two intervals."""
    for _ in range(count):
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=2 * INTERVAL + 1))
        assert message == {"type": "ping"}
        await socket.send(json.dumps({"type": "pong"}))


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 5 s) until `condition` holds: the server runs in another thread."""
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def test_every_acknowledged_socket_is_pinged_until_it_closes(
    pinging: Served, world: World
) -> None:
    sockets = [await acknowledged(pinging.url, world.viewer_token) for _ in range(3)]
    await asyncio.gather(*(pings(socket, 3) for socket in sockets))
    await sockets[0].close()
    await asyncio.gather(*(pings(socket, 2) for socket in sockets[1:]))
    await until(lambda: len(pinging.view.keep_alive_pings) == 2)
    for socket in sockets[1:]:
        await socket.close()
    await until(lambda: len(pinging.view.keep_alive_pings) == 0)


async def test_a_socket_is_pinged_only_once_acknowledged(pinging: Served, world: World) -> None:
    socket = await opened(pinging.url)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(socket.recv(), timeout=3 * INTERVAL)
    payload = {"Authorization": f"Bearer {world.viewer_token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    await pings(socket, 2)
    await socket.close()


async def test_the_connection_init_timeout_still_closes_a_silent_socket(
    pinging: Served, world: World
) -> None:
    silent = await opened(pinging.url)
    initialised = await acknowledged(pinging.url, world.viewer_token)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(silent.recv(), timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    # The socket that sent `connection_init` in time outlives the timeout, and works.
    await pings(initialised, 6)
    await initialised.send(json.dumps({"type": "ping"}))
    while (message := json.loads(await initialised.recv()))["type"] == "ping":
        await initialised.send(json.dumps({"type": "pong"}))
    assert message == {"type": "pong"}
    await initialised.close()


async def test_pings_also_reach_sockets_served_without_direct_writes(
    settings: Settings, world: World
) -> None:
    """Without the request middleware the view cannot write at once (no uvicorn `send` in
    the scope): pings take strawberry's ordinary path."""
    runtime = Runtime(settings.model_copy(update={"ws_keepalive_seconds": INTERVAL}))
    try:
        view = GraphQLApp(runtime, Metrics())
        with serve_in_thread(view, ws=LeanWebSocketProtocol) as base:
            socket = await acknowledged(base.replace("http://", "ws://"), world.viewer_token)
            await pings(socket, 3)
            await socket.close()
            await until(lambda: len(view.keep_alive_pings) == 0)
    finally:
        await runtime.close()
