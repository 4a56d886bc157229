"""The GraphQL ASGI app: HTTP and WebSocket (graphql-transport-ws, graphql-ws) at /graphql.

A WebSocket is authenticated once, at `connection_init`: the token comes from its payload
(`{"Authorization": "Bearer …"}`) or else from the upgrade request's header, and a socket
without a valid token is closed (4403 on graphql-transport-ws). Both protocols take this one
path. A browser may open a socket only from the same origin or an allowed one
(`SIGNALSMITH_ALLOWED_ORIGINS`); the server pings every `ws_keepalive_seconds`.

A browser that GETs /graphql asking for HTML gets the GraphiQL IDE, whose files this server
serves itself (`app.web`: React and GraphiQL from `web/node_modules`, installed by `make
setup`), so the page names no other host.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)
from strawberry.types.unset import UNSET, UnsetType

from app.errors import Unauthenticated
from app.http import SERVER_SEND
from app.metrics import Metrics
from app.runtime import Runtime
from app.web import (
    IDE_POLICY,
    MISSING_VENDOR_MESSAGE,
    missing_vendor_files,
    page_headers,
    vendor_url,
)
from graphql_schema.context import GraphQLContext
from graphql_schema.keepalive import KeepAlive
from graphql_schema.schema import build_schema
from graphql_schema.shared_results import OPERATION_OUTLET, SHARED

#: strawberry's JSON encoding (`encode_json`), which shared payloads reproduce.
COMPACT = (",", ":")

#: A server ping as strawberry encodes it (`encode_json`).
PING = '{"type":"ping"}'

#: Where a request's context is kept (in the ASGI scope's state) until the request ends.
CONTEXT_KEY = "signalsmith.graphql_context"

#: The IDE page: local files only, started by /assets/ide/ide.js (no inline script), which
#: reads the endpoint from `data-endpoint` and derives the subscription URL (ws: or wss:).
IDE_HTML = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Signalsmith GraphQL IDE</title>
    <link rel="icon" href="/assets/console/icon.svg">
    <link rel="stylesheet" href="{vendor_url("graphiql.min.css")}">
    <link rel="stylesheet" href="/assets/ide/ide.css">
  </head>
  <body>
    <div id="graphiql" data-endpoint="/graphql">Loading the GraphQL IDE…</div>
    <script src="{vendor_url("react.production.min.js")}"></script>
    <script src="{vendor_url("react-dom.production.min.js")}"></script>
    <script src="{vendor_url("graphiql.min.js")}"></script>
    <script src="/assets/ide/ide.js"></script>
  </body>
</html>
"""


class PingingTransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """graphql-transport-ws with server pings (from the view's one `KeepAlive` task), so
    idle sockets stay open through proxies and a vanished client is noticed; and with an
    `Outlet` per operation, through which a shared subscription result is written at once
    from the task that has it (`shared_results`: direct delivery)."""

    #: The ping being sent the ordinary way (the client was slow to read), if any.
    _ping: asyncio.Task[None] | None = None

    async def run_operation(self, operation: Operation[GraphQLContext, None]) -> None:
        # This coroutine is the operation's own task: the outlet is seen only by it.
        if self._server_send is not None:
            OPERATION_OUTLET.set(OperationOutlet(self, operation, self._write_now))
        await super().run_operation(operation)

    @functools.cached_property
    def _server_send(self) -> Callable[[ASGIMessage], Awaitable[None]] | None:
        """uvicorn's websockets-sansio `send`, which `_write_now` may step; None for
        another server, whose `send` cannot promise that."""
        ws = getattr(self.websocket, "ws", None)
        send = None if ws is None else ws.scope.get(SERVER_SEND)
        if send is None or not _is_sans_io_protocol(getattr(send, "__self__", None)):
            return None
        return cast("Callable[[ASGIMessage], Awaitable[None]]", send)

    def _write_now(self, text: str) -> bool:
        """Send a text message now, or answer False without sending anything."""
        send = self._server_send
        if send is None:
            return False
        # uvicorn's websockets-sansio `send` waits only before it writes, while the client
        # is slow to read (transport paused): then nothing was sent, and the message takes
        # the ordinary path, which waits.
        sending = cast("Coroutine[Any, Any, None]", send({"type": "websocket.send", "text": text}))
        try:
            sending.send(None)
        except StopIteration:
            return True
        except Exception:  # closed or disconnected: the ordinary path reports it
            return False
        sending.close()
        return False

    async def handle(self) -> None:
        keep_alive = cast("GraphQLApp", self.view).keep_alive_pings
        keep_alive.add(self)
        try:
            await super().handle()
        finally:
            keep_alive.discard(self)
            if self._ping is not None:
                self._ping.cancel()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        # Cancelled by the message, the finished timeout task keeps its traceback's frames
        # (about 1 KB) for the socket's life: nothing reads it once it is done.
        timeout = self.connection_init_timeout_task
        if self.connection_init_received and timeout is not None and timeout.done():
            self.connection_init_timeout_task = None

    def send_keepalive(self) -> None:
        """Ping the client (`KeepAlive` calls this every keep-alive interval), once the
        connection is acknowledged, and unless the previous ping is still waiting."""
        if not self.connection_acknowledged or self._ping is not None:
            return
        if not (self._encode_json_is_default and self._write_now(PING)):
            self._ping = asyncio.create_task(self._send_ping())

    async def _send_ping(self) -> None:
        try:
            await self.send_message({"type": "ping"})
        except Exception:  # closed: `handle` ends and stops the pings
            pass
        finally:
            self._ping = None

    async def send_message(self, message: Message) -> None:
        """A `next` whose data is a shared subscription result (`shared_results`) is sent
        with the payload encoded once for every socket; anything else as strawberry does."""
        if message["type"] == "next" and self._encode_json_is_default:
            payload = message["payload"]
            if len(payload) == 1 and "data" in payload:
                encoded = SHARED.encoded_payload(payload["data"])
                if encoded is not None:
                    operation_id = json.dumps(message["id"], separators=COMPACT)
                    text = f'{{"id":{operation_id},"type":"next","payload":{encoded}}}'
                    try:
                        await self.websocket.ws.send_text(text)  # type: ignore[attr-defined]
                    except WebSocketDisconnect as exc:
                        raise WebSocketDisconnected from exc
                    return
        await super().send_message(message)

    @functools.cached_property
    def _encode_json_is_default(self) -> bool:
        return type(self.view).encode_json is GraphQL.encode_json and hasattr(self.websocket, "ws")


class OperationOutlet:
    """One operation's `next` messages, written at once while the operation is live."""

    __slots__ = ("_handler", "_operation", "_prefix", "_write")

    def __init__(
        self,
        handler: BaseGraphQLTransportWSHandler[GraphQLContext, None],
        operation: Operation[GraphQLContext, None],
        write: Callable[[str], bool],
    ) -> None:
        self._handler = handler
        self._operation = operation
        self._write = write
        operation_id = json.dumps(operation.id, separators=COMPACT)
        self._prefix = f'{{"id":{operation_id},"type":"next","payload":'

    def write_next(self, payload: str) -> bool:
        global _last_message
        operation = self._operation
        if operation.completed or self._handler.operations.get(operation.id) is not operation:
            return False  # completed, or the client ended it
        prefix, last_payload, text = _last_message
        if payload is not last_payload or prefix != self._prefix:
            text = f"{self._prefix}{payload}}}"
            _last_message = (self._prefix, payload, text)
        return self._write(text)


#: (prefix, payload, message) of the last `next` written: many subscribers use the same
#: operation id (clients often number theirs from 1), so they get the very same text.
_last_message: tuple[str, str, str] = ("", "", "")


def _is_sans_io_protocol(server: object) -> bool:
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - another server
        return False
    return isinstance(server, WebSocketsSansIOProtocol)


class GraphQLApp(GraphQL[GraphQLContext, None]):
    graphql_transport_ws_handler_class = PingingTransportWSHandler

    def __init__(self, runtime: Runtime, metrics: Metrics) -> None:
        introspection = runtime.settings.graphql_introspection
        keep_alive_interval = runtime.settings.ws_keepalive_seconds
        super().__init__(
            build_schema(metrics=metrics, introspection=introspection),
            graphql_ide="graphiql" if introspection else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            keep_alive=True,
            keep_alive_interval=keep_alive_interval,  # graphql-ws (strawberry's own "ka")
        )
        self.runtime = runtime
        #: graphql-transport-ws pings (`PingingTransportWSHandler`).
        self.keep_alive_pings = KeepAlive(keep_alive_interval)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page (strawberry's loads from a CDN); 503 until `make setup` ran."""
        headers = page_headers(IDE_POLICY)
        if missing_vendor_files():
            return PlainTextResponse(MISSING_VENDOR_MESSAGE, status_code=503, headers=headers)
        return HTMLResponse(IDE_HTML, headers=headers)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphQLContext:
        context = GraphQLContext(self.runtime, request.headers.get("authorization"))
        request.scope.setdefault("state", {})[CONTEXT_KEY] = context
        return context

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        """Authenticate the socket: the `connection_init` token, else the upgrade header."""
        params = context.connection_params or {}
        given = params.get("Authorization", params.get("authorization"))
        if isinstance(given, str) and given:
            context.authorization = given
        try:
            async with self.runtime.context(context.authorization):
                pass
        except Unauthenticated as exc:
            raise ConnectionRejectionError(
                {"code": exc.graphql_code, "message": exc.message}
            ) from None
        return UNSET

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then close its session (for a WebSocket: the connection's)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            context = scope.get("state", {}).get(CONTEXT_KEY)
            if isinstance(context, GraphQLContext):
                await context.close()

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        """A cross-origin page may open a socket only from an origin the settings allow
        (strawberry already lets through non-browser clients and the same origin)."""
        allowed = self.runtime.settings.origins
        return "*" in allowed or origin.strip().rstrip("/") in allowed


def build_graphql_app(runtime: Runtime, metrics: Metrics) -> GraphQLApp:
    return GraphQLApp(runtime, metrics)
