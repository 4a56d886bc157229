"""ASGI middleware around every request: request id, access log, HTTP metrics, body limit."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging import request_id_var
from app.metrics import Metrics

log = logging.getLogger("signalsmith.http")

#: Where a WebSocket's scope keeps the server's own `send` (uvicorn's): a `websocket.send`
#: needs nothing from the wrappers in between (they only act on HTTP responses), and a
#: transport sending one message to many sockets may call it directly (graphql_schema.app).
SERVER_SEND = "signalsmith.server_send"


class RequestObservation:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming if 0 < len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        )
        token = request_id_var.set(request_id)
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif kind == "websocket.accept":
                status = 101  # Switching Protocols
            elif kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.close" and status == 500:
                status = 403  # closed before it was accepted: the server refuses the upgrade
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = (
                scope.get("root_path", "") + getattr(route, "path", "") if route else "unmatched"
            )
            method = scope.get("method", "WS")
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)
