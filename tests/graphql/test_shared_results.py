"""Subscription results executed once and sent to every subscriber with the same document
(`graphql_schema.shared_results`): each subscriber still gets exactly its own events, in
order, under its own operation id, and authorisation stays per subscriber."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import parse
from graphql.language import OperationDefinitionNode
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from app.asgi import create_app
from app.events import RunEvent
from app.runtime import Runtime
from app.services import runs
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from graphql_schema.shared_results import SHARED, SharedResults, _variables_beyond_root_arguments
from tests.factories import World, as_token, create_sync, create_world
from tests.servers import serve_in_thread
from tests.services import REDIS_URL, require_reachable, unique_name

FULL = """subscription Follow($runId: ID!, $after: Int) {
  syncRunEvents(runId: $runId, after: $after) { runId seq type payload at }
}"""
NARROW = """subscription ($runId: ID!) { syncRunEvents(runId: $runId) { seq type } }"""


@dataclass
class Served:
    url: str
    runtime: Runtime
    world: World
    run_id: uuid.UUID


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """The API (Redis events) in a thread, and a queued run (no worker runs it): the test
    publishes the run's later events itself."""
    require_reachable("Redis", REDIS_URL)
    shared = settings.model_copy(
        update={"redis_url": REDIS_URL, "queue_name": unique_name("signalsmith:test")}
    )
    runtime = Runtime(shared)
    try:
        world = await create_world(runtime)
        sync = await create_sync(runtime, world)
        async with as_token(runtime, world.editor_token) as ctx:
            run = await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
        with serve_in_thread(create_app(shared), ws=LeanWebSocketProtocol) as base:
            url = base.replace("http://", "ws://") + "/graphql"
            yield Served(url, runtime, world, run.id)
    finally:
        await runtime.close()


async def subscribe(
    served: Served, token: str, operation_id: str, query: str, **variables: Any
) -> ClientConnection:
    socket = await connect(served.url, subprotocols=[Subprotocol("graphql-transport-ws")])
    payload = {"Authorization": f"Bearer {token}"}
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    message = {"query": query, "variables": {"runId": str(served.run_id), **variables}}
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": message}))
    return socket


async def received(socket: ClientConnection) -> list[str]:
    """The raw messages until (and with) the subscription's `complete` or `error`."""
    raws: list[str] = []
    while True:
        raw = await asyncio.wait_for(socket.recv(), timeout=30)
        assert isinstance(raw, str)
        message = json.loads(raw)
        if message["type"] == "ping":
            await socket.send(json.dumps({"type": "pong"}))
            continue
        raws.append(raw)
        if message["type"] != "next":
            return raws


async def first_message(socket: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
    return message


async def test_subscribers_share_results_but_each_gets_its_own_events_and_id(
    served: Served,
) -> None:
    world = served.world
    a = await subscribe(served, world.viewer_token, "a-1", FULL)
    b = await subscribe(served, world.admin_token, "b-77", FULL, after=0)
    narrow = await subscribe(served, world.viewer_token, "n", NARROW)
    late = await subscribe(served, world.viewer_token, "late", FULL, after=3)
    other = await create_world(served.runtime)
    outsider = await subscribe(served, other.viewer_token, "x", FULL)

    # Every subscriber replays the stored `queued` event (seq 1) before the live ones, so
    # each is listening by the time the events below are published.
    firsts = [await first_message(socket) for socket in (a, b, narrow)]
    assert [m["payload"]["data"]["syncRunEvents"]["seq"] for m in firsts] == [1, 1, 1]
    refused = await first_message(outsider)
    assert refused["id"] == "x" and refused["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["NOT_FOUND"]
    assert (await first_message(outsider))["type"] == "complete"
    await outsider.close()

    hits, delivered = SHARED.hits, SHARED.delivered
    at = dt.datetime.now(dt.UTC)
    payload: dict[str, Any]
    for seq in range(2, 7):
        kind, payload = "progress", {"sent": seq * 10}
        if seq == 6:
            kind, payload = "status", {"status": "succeeded"}
        event = RunEvent(served.run_id, world.workspace_id, seq, kind, payload, at)
        await served.runtime.events.publish(event)

    streams = {name: await received(socket) for name, socket in (("a", a), ("b", b))}
    streams["narrow"] = await received(narrow)
    streams["late"] = await received(late)
    for socket in (a, b, narrow, late):
        await socket.close()

    def events(raws: list[str]) -> list[dict[str, Any]]:
        return [json.loads(raw)["payload"]["data"]["syncRunEvents"] for raw in raws[:-1]]

    a_events = [firsts[0]["payload"]["data"]["syncRunEvents"], *events(streams["a"])]
    b_events = [firsts[1]["payload"]["data"]["syncRunEvents"], *events(streams["b"])]
    assert [e["seq"] for e in a_events] == [1, 2, 3, 4, 5, 6]
    assert a_events == b_events
    third = dict(a_events[2])
    assert dt.datetime.fromisoformat(third.pop("at")) == at
    assert third == {
        "runId": str(served.run_id),
        "seq": 3,
        "type": "progress",
        "payload": {"sent": 30},
    }
    # The same bytes apart from the operation id, which is each subscriber's own.
    for raw_a, raw_b in zip(streams["a"][:-1], streams["b"][:-1], strict=True):
        assert json.loads(raw_a)["id"] == "a-1" and json.loads(raw_b)["id"] == "b-77"
        assert raw_a.replace('"a-1"', '"b-77"', 1) == raw_b
    assert [json.loads(raw)["type"] for raw in streams["a"]][-1] == "complete"
    # A different selection set gets its own payloads.
    assert [e for e in events(streams["narrow"])] == [
        {"seq": seq, "type": "progress"} for seq in range(2, 6)
    ] + [{"seq": 6, "type": "status"}]
    assert all(json.loads(raw)["id"] == "n" for raw in streams["narrow"])
    # `after` only picks where the stream starts.
    assert [e["seq"] for e in events(streams["late"])] == [4, 5, 6]
    assert events(streams["late"]) == a_events[3:]
    # b (and late) reused a's results: at least one hit per live event.
    assert SHARED.hits - hits >= 5
    # The live events reached the caught-up subscribers straight from the task that received
    # them (direct delivery), each in its own `next` message with its own id.
    assert SHARED.delivered - delivered >= 5


def operation(text: str) -> OperationDefinitionNode:
    definition = parse(text).definitions[0]
    assert isinstance(definition, OperationDefinitionNode)
    return definition


def test_only_variables_beyond_the_root_arguments_tell_results_apart() -> None:
    assert _variables_beyond_root_arguments(operation(FULL), []) == frozenset()
    with_directive = """subscription ($runId: ID!, $after: Int, $withAt: Boolean!) {
      syncRunEvents(runId: $runId, after: $after) { seq at @include(if: $withAt) }
    }"""
    assert _variables_beyond_root_arguments(operation(with_directive), []) == {"withAt"}
    fragment = """subscription ($runId: ID!) { ... on Subscription { syncRunEvents(runId: $runId)
      { seq } } }"""
    assert _variables_beyond_root_arguments(operation(fragment), []) is None


def test_the_shared_results_are_bounded() -> None:
    from graphql import ExecutionResult

    cache = SharedResults(limit=2)
    results = [ExecutionResult(data={"n": n}) for n in range(3)]
    for n, result in enumerate(results):
        cache.put(n, result)
    assert cache.get(0) is None and cache.get(2) is results[2]
    assert cache.encoded_payload(results[0].data) is None
    assert cache.encoded_payload(results[1].data) == '{"data":{"n":1}}'
    assert cache.encoded_payload({"n": 1}) is None  # equal but not the shared object
