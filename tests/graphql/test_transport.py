"""The /graphql endpoint as a whole: metrics, sessions closed per request, concurrency of
sibling resolvers over one session, the IDE page, and which origins may open a WebSocket."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.pool import QueuePool
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from app.asgi import create_app
from app.runtime import Runtime
from app.settings import Settings
from app.websocket_protocol import LeanWebSocketProtocol
from tests.factories import World, create_sync
from tests.graphql.client import data, error_codes, gql
from tests.servers import serve_in_thread


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in the Prometheus text format."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_named_operations_by_type_and_outcome(
    client: httpx.AsyncClient, world: World
) -> None:
    name = f"ListSyncs_{uuid.uuid4().hex[:8]}"
    query = f"query {name} {{ audienceSyncs {{ totalCount }} }}"
    data(await gql(client, query, token=world.admin_token))
    data(await gql(client, query, token=world.admin_token))
    failing = f"Forbidden_{uuid.uuid4().hex[:8]}"
    await gql(client, f"query {failing} {{ auditLog {{ totalCount }} }}", token=world.viewer_token)
    text = (await client.get("/metrics")).text
    total = "signalsmith_graphql_operations_total"
    assert sample(text, total, operation=name, type="query", outcome="ok") == 2.0
    assert sample(text, total, operation=name, type="query", outcome="error") is None
    assert sample(text, total, operation=failing, type="query", outcome="error") == 1.0
    latency = "signalsmith_graphql_operation_duration_seconds_count"
    assert sample(text, latency, operation=name, type="query") == 2.0


async def test_anonymous_mutations_are_counted_as_such(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    total = "signalsmith_graphql_operations_total"
    labels = {"operation": "anonymous", "type": "mutation", "outcome": "error"}
    before = sample((await client.get("/metrics")).text, total, **labels) or 0.0
    sync = await create_sync(runtime, world)
    await gql(
        client,
        "mutation($id: ID!) { deleteAudienceSync(id: $id) }",
        {"id": str(sync.id)},
        token=world.viewer_token,
    )
    assert sample((await client.get("/metrics")).text, total, **labels) == before + 1


async def test_every_request_gives_its_connection_back(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    pool = runtime.database.engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    data(await gql(client, "{ viewer { role } sources { totalCount } }", token=world.admin_token))
    assert pool.checkedout() == 0
    failed = await gql(
        client,
        '{ source(id: "00000000-0000-0000-0000-000000000000") { id } }',
        token=world.admin_token,
    )
    assert error_codes(failed) == ["NOT_FOUND"]
    assert pool.checkedout() == 0


async def test_sibling_resolvers_share_the_session_safely(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """graphql-core resolves siblings concurrently; here many of them query the session."""
    for i in range(4):
        await create_sync(runtime, world, name=f"sync {i}")
    body = data(
        await gql(
            client,
            """{
              viewer { role }
              sources { totalCount }
              audienceSyncs { edges { node { name runs { totalCount } audience { name } } } }
              destinations { edges { node { name config } } }
            }""",
            token=world.admin_token,
        )
    )
    nodes = [edge["node"] for edge in body["audienceSyncs"]["edges"]]
    assert [n["name"] for n in nodes] == [f"sync {i}" for i in range(4)]
    assert all(n["runs"] == {"totalCount": 0} for n in nodes)
    assert body["destinations"]["edges"][0]["node"]["config"] == {
        "url": "https://hooks.example.com/in"
    }


async def test_graphiql_is_served_when_introspection_is_on(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


ALLOWED_ORIGIN = "https://console.example.com"


@pytest.fixture
def origins_server(settings: Settings) -> Iterator[str]:
    """The app served with two allowed origins; yields its /graphql WebSocket URL."""
    app = create_app(
        settings.model_copy(update={"allowed_origins": f"{ALLOWED_ORIGIN}, https://b.test"})
    )
    with serve_in_thread(app, ws=LeanWebSocketProtocol) as base:
        yield base.replace("http://", "ws://") + "/graphql"


async def acknowledged(url: str, origin: str | None, token: str) -> bool:
    """Open a graphql-transport-ws socket sending `origin`; whether it was acknowledged."""
    async with connect(
        url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        origin=None if origin is None else Origin(origin),
    ) as socket:
        payload = {"Authorization": f"Bearer {token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        return bool(json.loads(await socket.recv())["type"] == "connection_ack")


async def test_websockets_from_other_origins_are_refused(origins_server: str, world: World) -> None:
    same = origins_server.replace("ws://", "http://").removesuffix("/graphql")
    for origin in (
        "https://evil.example",
        f"{ALLOWED_ORIGIN}.evil.example",
        ALLOWED_ORIGIN.replace("https://", "http://"),
        same.replace("127.0.0.1", "localhost"),
        "null",
    ):
        with pytest.raises(InvalidStatus) as refused:
            await acknowledged(origins_server, origin, world.viewer_token)
        assert refused.value.response.status_code == 403, origin


async def test_websockets_from_the_same_or_an_allowed_origin_are_accepted(
    origins_server: str, world: World
) -> None:
    same = origins_server.replace("ws://", "http://").removesuffix("/graphql")
    for origin in (None, same, ALLOWED_ORIGIN, ALLOWED_ORIGIN + "/", "https://b.test"):
        assert await acknowledged(origins_server, origin, world.viewer_token), origin


async def test_websockets_are_counted_by_how_the_upgrade_went(
    origins_server: str, world: World
) -> None:
    assert await acknowledged(origins_server, None, world.viewer_token)
    with pytest.raises(InvalidStatus):
        await acknowledged(origins_server, "https://evil.example", world.viewer_token)
    base = origins_server.replace("ws://", "http://").removesuffix("/graphql")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    total = "signalsmith_http_requests_total"
    assert sample(text, total, method="WS", route="/graphql", status="101") == 1.0
    assert sample(text, total, method="WS", route="/graphql", status="403") == 1.0
    assert sample(text, total, method="WS", route="/graphql", status="500") is None
