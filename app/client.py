"""A client of a running Signalsmith server, for the command line (DESIGN §3.3).

It triggers runs through GraphQL over HTTP and follows their events over a WebSocket
(`graphql-transport-ws`, `syncRunEvents`). It resumes after the last event it received when
an established socket drops. The token goes only in the `Authorization` header and in the
`connection_init` payload. No message of this module contains it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

COUNTS = "{ add update remove }"
RUN_FIELDS = f"""id syncId workspaceId status phase dryRun fullResync createdAt querySize
invalid unchanged planned {COUNTS} succeeded {COUNTS} failed {COUNTS} error {{ code message }}"""
WORKSPACE = "query CliWorkspace($id: ID!) { workspace(id: $id) { id } }"
TRIGGER = f"""mutation CliTrigger($id: ID!, $fullResync: Boolean!, $dryRun: Boolean!) {{
  triggerAudienceSync(id: $id, fullResync: $fullResync, dryRun: $dryRun) {{ {RUN_FIELDS} }}
}}"""
EVENTS = """subscription CliEvents($runId: ID!, $after: Int) {
  syncRunEvents(runId: $runId, after: $after) { seq type payload at }
}"""
PROTOCOL = Subprotocol("graphql-transport-ws")
#: Close codes after which reconnecting cannot help (the server refused us, not the network).
REFUSALS = {
    1008: "FORBIDDEN",
    4400: "BAD_REQUEST",
    4401: "UNAUTHENTICATED",
    4403: "UNAUTHENTICATED",
}
#: Times an established socket that dropped is reopened before following gives up.
RECONNECTS = 5


@dataclass
class ClientError(Exception):
    """The server refused the request, or could not be reached. `code` is the GraphQL
    `extensions.code` when the server gave one, else `HTTP` or `UNREACHABLE`."""

    message: str
    code: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def detail(self, name: str) -> str | None:
        """The message of the detail about `name` (e.g. the active run's id on a conflict)."""
        return next((str(d.get("message")) for d in self.details if d.get("field") == name), None)


class SignalsmithClient:
    """GraphQL over HTTP and WebSocket against one server, acting with one token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/graphql"

    async def check_workspace(self, workspace_id: uuid.UUID) -> None:
        """Fail unless the token acts in `workspace_id` (a token belongs to one workspace)."""
        await self._graphql(WORKSPACE, {"id": str(workspace_id)})

    async def trigger_run(
        self, sync_id: uuid.UUID, *, full_resync: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        """Queue a run of the sync; the run as GraphQL returns it."""
        variables = {"id": str(sync_id), "fullResync": full_resync, "dryRun": dry_run}
        run: dict[str, Any] = (await self._graphql(TRIGGER, variables))["triggerAudienceSync"]
        return run

    async def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.post(
                    f"{self.base_url}/graphql",
                    json={"query": query, "variables": variables},
                    headers=headers,
                )
        except httpx.HTTPError as exc:
            raise ClientError(
                f"could not reach {self.base_url} ({type(exc).__name__})", "UNREACHABLE"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(
                f"{self.base_url}/graphql answered HTTP {response.status_code} without a "
                "GraphQL result (is this a Signalsmith server?)",
                "HTTP",
            )
        if body.get("errors"):
            raise graphql_error(body["errors"])
        if response.status_code != 200 or not isinstance(body.get("data"), dict):
            raise ClientError(
                f"{self.base_url}/graphql answered HTTP {response.status_code}", "HTTP"
            )
        data: dict[str, Any] = body["data"]
        return data

    async def run_events(
        self, run_id: uuid.UUID, *, after: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """The run's events after `after` in order (`seq`, `type`, `payload`, `at`), ending
        with the terminal status event. A socket that drops after it was accepted is
        reopened, resuming after the last event received."""
        last, failures = after, 0
        while True:
            try:
                async with self._socket() as socket:
                    async for event in _subscription(socket, run_id, last):
                        last, failures = int(event["seq"]), 0
                        yield event
                    return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code in REFUSALS:
                    reason = exc.rcvd.reason if exc.rcvd is not None else ""
                    raise ClientError(
                        f"the server closed the subscription: {code} {reason}".strip(),
                        REFUSALS[code],
                    ) from None
                failures += 1
                if failures > RECONNECTS:
                    raise ClientError(
                        f"lost the connection to {self.ws_url} {RECONNECTS} times in a row",
                        "UNREACHABLE",
                    ) from None
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))

    def _socket(self) -> _AckedSocket:
        return _AckedSocket(self.ws_url, self._token, self._timeout)


class _AckedSocket:
    """A graphql-transport-ws connection, initialised with the token and acknowledged."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self._url, self._token, self._timeout = url, token, timeout
        self._socket: ClientConnection | None = None

    async def __aenter__(self) -> ClientConnection:
        try:
            socket = await connect(self._url, subprotocols=[PROTOCOL], open_timeout=self._timeout)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ClientError(
                f"{self._url} refused the WebSocket with HTTP {status}", "HTTP"
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ClientError(
                f"could not open a WebSocket to {self._url} ({type(exc).__name__})", "UNREACHABLE"
            ) from None
        self._socket = socket
        payload = {"Authorization": f"Bearer {self._token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        while (message := await _receive(socket))["type"] != "connection_ack":
            if message["type"] == "ping":
                await socket.send(json.dumps({"type": "pong"}))
        return socket

    async def __aexit__(self, *_: object) -> None:
        if self._socket is not None:
            await self._socket.close()


async def _subscription(
    socket: ClientConnection, run_id: uuid.UUID, after: int
) -> AsyncIterator[dict[str, Any]]:
    variables = {"runId": str(run_id), "after": after}
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": EVENTS, "variables": variables},
    }
    await socket.send(json.dumps(subscribe))
    while True:
        message = await _receive(socket)
        kind = message["type"]
        if kind == "ping":
            await socket.send(json.dumps({"type": "pong"}))
        elif kind == "next":
            result = message.get("payload") or {}
            if result.get("errors"):
                raise graphql_error(result["errors"])
            yield result["data"]["syncRunEvents"]
        elif kind == "error":
            raise graphql_error(message.get("payload") or [])
        elif kind == "complete":
            return


async def _receive(socket: ClientConnection) -> dict[str, Any]:
    raw = await socket.recv()
    try:
        message = json.loads(raw)
    except ValueError:
        raise ClientError("the server sent a message that is not JSON", "PROTOCOL") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ClientError("the server sent a message without a type", "PROTOCOL")
    return message


def graphql_error(errors: list[dict[str, Any]]) -> ClientError:
    """The first GraphQL error as a ClientError (its `extensions.code` and `details`)."""
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions") or {}
    return ClientError(
        str(first.get("message") or "the server refused the request"),
        str(extensions.get("code") or "GRAPHQL_ERROR"),
        list(extensions.get("details") or []),
    )
