"""Live run progress end to end: the API served by uvicorn (in a thread), a `signalsmith
worker` subprocess, Redis pub/sub between them, and real WebSocket and SSE clients."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.asgi import create_app
from app.db import migrate_async
from app.runtime import Runtime
from app.services import runs, tokens
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from models import AudienceSync
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import World, as_token, create_world
from tests.runs.test_trigger import hooked_sync
from tests.servers import serve_in_thread
from tests.services import REDIS_URL, require_reachable, unique_name

EVENTS = """subscription ($runId: ID!, $after: Int) {
  syncRunEvents(runId: $runId, after: $after) { runId seq type payload at }
}"""
TERMINAL = {"succeeded", "partial", "failed", "cancelled"}


@dataclass
class Live:
    base: str
    runtime: Runtime
    world: World
    receiver: Receiver
    sync: AudienceSync

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/graphql"

    async def trigger(self, *, slow: int = 0) -> str:
        """Trigger a run; its first `slow` batches each wait a little at the receiver, so
        subscribers see them live rather than only in the replay."""
        self.receiver.script.extend(Scripted(200, delay=0.2) for _ in range(slow))
        async with as_token(self.runtime, self.world.editor_token) as ctx:
            run = await runs.trigger_sync_run(
                ctx, workspace_id=self.world.workspace_id, sync_id=self.sync.id
            )
        return str(run.id)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(secret="hook-secret", script=deque())


@pytest.fixture
def hook_url(receiver: Receiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


@pytest.fixture
async def live(
    settings: Settings, secret_key: str, receiver: Receiver, hook_url: str, tmp_path: Path
) -> AsyncIterator[Live]:
    require_reachable("Redis", REDIS_URL)
    queue = unique_name("signalsmith:test")
    database_url = settings.database_url
    if settings.sqlite_path is not None:
        # Three processes' worth of connections on one SQLite file: give them their own.
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
        await migrate_async(database_url)
    shared = settings.model_copy(
        update={
            "database_url": database_url,
            "redis_url": REDIS_URL,
            "queue_name": queue,
            "allow_private_destinations": True,
        }
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNALSMITH_")},
        "SIGNALSMITH_DATABASE_URL": database_url,
        "SIGNALSMITH_SECRET_KEY": secret_key,
        "SIGNALSMITH_REDIS_URL": REDIS_URL,
        "SIGNALSMITH_QUEUE_NAME": queue,
        "SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS": "true",
        "SIGNALSMITH_SOURCE_FILES_DIR": str(settings.resolved_source_files_dir),
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    runtime = Runtime(shared)
    try:
        world = await create_world(runtime)
        sync = await hooked_sync(runtime, world, hook_url, config={"batch_size": 1})
        with serve_in_thread(create_app(shared), ws=LeanWebSocketProtocol) as base:
            yield Live(base, runtime, world, receiver, sync)
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), timeout=20)
        await runtime.close()


async def open_socket(url: str, token: str | None) -> ClientConnection:
    socket = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    payload = {} if token is None else {"Authorization": f"Bearer {token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return socket


async def acked(url: str, token: str) -> ClientConnection:
    socket = await open_socket(url, token)
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket


async def messages(socket: ClientConnection, variables: dict[str, Any]) -> AsyncIterator[Any]:
    """The subscription's `next` payloads, then its `error` or `complete` message."""
    await socket.send(
        json.dumps(
            {"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": variables}}
        )
    )
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))
        elif message["type"] == "next":
            yield message["payload"]
        else:
            yield message
            return


async def follow(live: Live, run_id: str, after: int | None = None) -> list[dict[str, Any]]:
    """Every event of the run after `after`, until the subscription completes."""
    socket = await acked(live.ws_url, live.world.viewer_token)
    try:
        received: list[dict[str, Any]] = []
        async for payload in messages(socket, {"runId": run_id, "after": after}):
            if payload.get("type") == "complete":
                return received
            assert "data" in payload and not payload.get("errors"), payload
            received.append(payload["data"]["syncRunEvents"])
        raise AssertionError("the subscription ended without completing")
    finally:
        await socket.close()


def assert_whole(events: list[dict[str, Any]], first: int = 1) -> None:
    assert [e["seq"] for e in events] == list(range(first, first + len(events)))
    assert events[-1]["type"] == "status" and events[-1]["payload"]["status"] in TERMINAL
    earlier = events[:-1]
    assert not any(e["type"] == "status" and e["payload"]["status"] in TERMINAL for e in earlier)


async def stored_events(live: Live, run_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.base) as client:
        response = await client.get(
            f"/api/v1/workspaces/{live.world.workspace_id}/runs/{run_id}/events",
            headers=live.world.headers("viewer"),
        )
    assert response.status_code == 200
    events: list[dict[str, Any]] = response.json()
    return events


async def test_a_subscriber_sees_every_event_of_a_run_on_another_process(live: Live) -> None:
    run_id = await live.trigger(slow=3)
    events = await follow(live, run_id)
    assert_whole(events)
    assert {e["runId"] for e in events} == {run_id}
    # One per commit (4 batches of one: batches in flight together are committed together),
    # and the end.
    assert 2 <= [e["type"] for e in events].count("progress") <= 5
    stored = await stored_events(live, run_id)
    assert [(e["seq"], e["type"], e["payload"]) for e in events] == [
        (e["seq"], e["type"], e["payload"]) for e in stored
    ]
    assert events[-1]["payload"]["status"] == "succeeded"


async def test_reconnecting_with_after_yields_exactly_the_missing_events(live: Live) -> None:
    run_id = await live.trigger(slow=4)
    socket = await acked(live.ws_url, live.world.viewer_token)
    first: list[dict[str, Any]] = []
    async for payload in messages(socket, {"runId": run_id}):
        first.append(payload["data"]["syncRunEvents"])
        if len(first) == 2:
            break
    await socket.close()  # the socket drops mid-run
    rest = await follow(live, run_id, after=first[-1]["seq"])
    assert rest[0]["seq"] == first[-1]["seq"] + 1
    assert_whole(first + rest)
    stored = await stored_events(live, run_id)
    assert [e["seq"] for e in first + rest] == [e["seq"] for e in stored]


async def test_two_hundred_subscribers_all_receive_the_terminal_event(live: Live) -> None:
    run_id = await live.trigger(slow=2)
    results = await asyncio.gather(*(follow(live, run_id) for _ in range(200)))
    for events in results:
        assert_whole(events)
    assert {events[-1]["payload"]["status"] for events in results} == {"succeeded"}


async def test_subscriptions_are_refused_without_a_valid_token_or_outside_the_workspace(
    live: Live,
) -> None:
    run_id = await live.trigger()
    for token in (None, "ssk_not-a-real-token"):
        socket = await open_socket(live.ws_url, token)
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with as_token(live.runtime, live.world.admin_token) as ctx:
        minted = await tokens.create_token(
            ctx,
            workspace_id=live.world.workspace_id,
            data={"name": "soon revoked", "email": f"{unique_name('r')}@example.com"},
        )
        await tokens.revoke_token(
            ctx, workspace_id=live.world.workspace_id, token_id=minted.token.id
        )
    socket = await open_socket(live.ws_url, minted.secret)
    with pytest.raises(ConnectionClosed) as closed:
        await socket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # The token in the upgrade request's header works as well as in connection_init.
    header = {"Authorization": f"Bearer {live.world.viewer_token}"}
    async with connect(
        live.ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        additional_headers=header,
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
    other = await create_world(live.runtime)
    socket = await acked(live.ws_url, other.viewer_token)
    answers = [m async for m in messages(socket, {"runId": run_id})]
    await socket.close()
    # The run looks absent: one result carrying the error, and no event of the run.
    assert answers[-1]["type"] == "complete" and len(answers) == 2
    assert answers[0]["data"] is None
    assert [e["extensions"]["code"] for e in answers[0]["errors"]] == ["NOT_FOUND"]


async def test_a_malformed_message_closes_only_its_own_socket(live: Live) -> None:
    healthy = await acked(live.ws_url, live.world.viewer_token)
    broken = await acked(live.ws_url, live.world.viewer_token)
    await broken.send("{not json")
    with pytest.raises(ConnectionClosed) as closed:
        await broken.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
    run_id = await live.trigger()
    received = []
    async for payload in messages(healthy, {"runId": run_id}):
        if payload.get("type") == "complete":
            break
        received.append(payload["data"]["syncRunEvents"])
    await healthy.close()
    assert_whole(received)


async def test_server_sent_events_carry_what_the_json_endpoint_lists(live: Live) -> None:
    run_id = await live.trigger(slow=2)
    path = f"/api/v1/workspaces/{live.world.workspace_id}/runs/{run_id}/events"
    headers = {**live.world.headers("viewer"), "Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=live.base, timeout=60) as client:
        async with client.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            streamed = parse_sse(await response.aread())
        resumed_from = streamed[2]["id"]
        again = await client.get(path, headers={**headers, "Last-Event-ID": resumed_from})
        resumed = parse_sse(again.content)
    stored = await stored_events(live, run_id)
    assert [json.loads(e["data"]) for e in streamed] == stored
    assert [e["id"] for e in streamed] == [str(e["seq"]) for e in stored]
    assert [e["event"] for e in streamed] == [e["type"] for e in stored]
    assert [json.loads(e["data"]) for e in resumed] == stored[3:]


async def test_workspace_run_updates_streams_snapshots_up_to_the_end(live: Live) -> None:
    socket = await acked(live.ws_url, live.world.viewer_token)
    query = "subscription { workspaceRunUpdates { id status progress succeeded { add } } }"
    await socket.send(json.dumps({"id": "w", "type": "subscribe", "payload": {"query": query}}))
    await socket.send(json.dumps({"type": "ping"}))  # answered once the subscription is set up
    assert json.loads(await socket.recv())["type"] == "pong"
    run_id = await live.trigger(slow=1)
    snapshots = []
    while not snapshots or snapshots[-1]["status"] not in TERMINAL:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
        if message["type"] == "next":
            snapshots.append(message["payload"]["data"]["workspaceRunUpdates"])
    await socket.close()
    assert {s["id"] for s in snapshots} == {run_id}
    # Snapshots are read when an event arrives, so the run may already be past `queued`.
    statuses = [s["status"] for s in snapshots]
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)
    assert statuses[-1] == "succeeded"
    assert snapshots[-1]["progress"] == 1.0 and snapshots[-1]["succeeded"]["add"] == 4


def parse_sse(body: bytes) -> list[dict[str, str]]:
    events = []
    for block in body.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if fields:
            events.append(fields)
    return events
