"""`POST …/destinations/{id}/check` (the connector tests the stored config), and a sync's
mapping and `on_exit` checked against its destination's type."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.asgi import create_app
from app.destinations.registry import SPECS
from app.runtime import Runtime
from app.services import destinations
from app.settings import Settings
from models.enums import DestinationType
from tests.factories import World, as_token, create_world, table_counts
from tests.rest.support import assert_error, base
from tests.servers import serve_in_thread

SECRET = "hook-secret-canary-7f3"
HEADER = "header-canary-91c"


@pytest.fixture
async def local_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of a deployment that allows private destinations (local demos, tests)."""
    app = create_app(settings.model_copy(update={"allow_private_destinations": True}))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await app.state.runtime.close()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Any]]]:
    """A local webhook receiver on 127.0.0.1: its URL and the bodies it was sent."""
    received: list[Any] = []

    async def hook(request: Request) -> Response:
        received.append(await request.json())
        return JSONResponse({})

    with serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield f"{url}/hook", received


async def local_webhook(settings: Settings, world: World, url: str) -> uuid.UUID:
    """A webhook to `url` stored while private destinations were allowed."""
    runtime = Runtime(settings.model_copy(update={"allow_private_destinations": True}))
    try:
        async with as_token(runtime, world.editor_token) as ctx:
            destination = await destinations.create_destination(
                ctx,
                workspace_id=world.workspace_id,
                data={
                    "name": "local hook",
                    "type": "webhook",
                    "config": {"url": url, "secret": SECRET, "headers": {"X-Key": HEADER}},
                },
            )
    finally:
        await runtime.close()
    return destination.id


def check_path(world: World, destination_id: uuid.UUID) -> str:
    return f"{base(world)}/destinations/{destination_id}/check"


async def test_a_viewer_checks_a_webhook_to_an_allowed_local_receiver(
    local_client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    world: World,
    receiver: tuple[str, list[Any]],
) -> None:
    url, received = receiver
    destination_id = await local_webhook(settings, world, url)
    before = await table_counts(runtime)
    checked = await local_client.post(
        check_path(world, destination_id), headers=world.headers("viewer")
    )
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"status": "ok"}
    assert received == []  # a check sends no records
    assert await table_counts(runtime) == before


async def test_a_private_address_is_422_when_private_destinations_are_not_allowed(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, world: World
) -> None:
    destination_id = await local_webhook(settings, world, "http://127.0.0.1:9/hook")
    before = await table_counts(runtime)
    response = await client.post(check_path(world, destination_id), headers=world.headers("viewer"))
    error = assert_error(response, 422, "config")
    assert error["details"] == [{"field": "config", "message": error["details"][0]["message"]}]
    assert "non-public address" in error["message"]
    assert "SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS" in error["message"]
    assert SECRET not in response.text and HEADER not in response.text
    assert await table_counts(runtime) == before


async def test_a_host_that_does_not_resolve_is_422(
    local_client: httpx.AsyncClient, world: World
) -> None:
    made = await local_client.post(
        f"{base(world)}/destinations",
        headers=world.headers("editor"),
        json={
            "name": "nowhere",
            "type": "webhook",
            "config": {"url": "https://nowhere.invalid/hook", "secret": SECRET},
        },
    )
    assert made.status_code == 201, made.text
    response = await local_client.post(
        check_path(world, uuid.UUID(made.json()["id"])), headers=world.headers("viewer")
    )
    error = assert_error(response, 422, "config")
    assert "nowhere.invalid" in error["message"] and SECRET not in response.text


def unavailable_type() -> DestinationType:
    kinds = [kind for kind, spec in SPECS.items() if not spec.available]
    assert kinds, "every destination type has a connector: pick another unavailable case"
    return DestinationType.iterable if DestinationType.iterable in kinds else kinds[-1]


async def test_a_type_without_a_connector_is_422(client: httpx.AsyncClient, world: World) -> None:
    kind = unavailable_type()
    made = await client.post(
        f"{base(world)}/destinations",
        headers=world.headers("editor"),
        json={"name": "later", "type": kind.value, "config": {"api_key": SECRET}},
    )
    assert made.status_code == 201, made.text
    response = await client.post(
        check_path(world, uuid.UUID(made.json()["id"])), headers=world.headers("viewer")
    )
    error = assert_error(response, 422, "config")
    assert error["message"] == f"config: the {kind.value} connector is not available yet"
    assert SECRET not in response.text


async def test_only_this_workspace_may_check_its_destination(
    local_client: httpx.AsyncClient, runtime: Runtime, settings: Settings, world: World
) -> None:
    destination_id = await local_webhook(settings, world, "http://127.0.0.1:9/hook")
    other = await create_world(runtime)
    path = check_path(world, destination_id)
    assert_error(await local_client.post(path), 401)
    other_token = {"Authorization": f"Bearer {other.admin_token}"}
    assert_error(await local_client.post(path, headers=other_token), 403)
    # Another workspace's destination asked for in one's own workspace: absent.
    foreign = check_path(world, other.destination_id)
    assert_error(await local_client.post(foreign, headers=world.headers("admin")), 404)
    # And one's own workspace asking for another's destination id: absent too.
    theirs = check_path(other, destination_id)
    assert_error(await local_client.post(theirs, headers=other.headers("admin")), 404)
    assert (await local_client.post(path, headers=world.headers("viewer"))).status_code == 200


# A sync's fit to its destination type -----------------------------------------------------


async def test_on_exit_must_be_one_the_destination_type_supports(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    url, headers = f"{base(world)}/audience-syncs", world.headers("editor")
    before = await table_counts(runtime)
    body = world.sync_body(config={"on_exit": "delete_record"})
    error = assert_error(await client.post(url, json=body, headers=headers), 422, "config.on_exit")
    assert [d["field"] for d in error["details"]] == ["config.on_exit"]
    assert "webhook supports on_exit remove, not delete_record" in error["message"]
    assert await table_counts(runtime) == before

    made = await client.post(
        url, json=world.sync_body(config={"on_exit": "remove"}), headers=headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["config"]["on_exit"] == "remove"
    change = {"config": {"on_exit": "clear_fields"}}
    updated = await client.put(f"{url}/{made.json()['id']}", json=change, headers=headers)
    assert_error(updated, 422, "config.on_exit")
