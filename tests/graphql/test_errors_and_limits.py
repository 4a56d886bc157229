"""Error codes, masking of unexpected errors, and the bounds on documents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from graphql import get_introspection_query
from starlette.applications import Starlette

from app.asgi import create_app
from app.runtime import Runtime
from app.services import syncs
from app.settings import Settings
from graphql_schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.factories import World, create_sync, create_world
from tests.graphql.client import data, error_codes, gql, only_error


async def test_no_token_is_unauthenticated_only_where_auth_is_needed(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, "{ __typename viewer { role } }")
    assert body["data"] == {"__typename": "Query", "viewer": None}
    error = only_error(body)
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and error["path"] == ["viewer"]


async def test_invalid_token_is_unauthenticated_for_every_field(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, "{ viewer { role } sources { totalCount } }", token="ssk_nope")
    assert body["data"] == {"viewer": None, "sources": None}
    assert error_codes(body) == ["UNAUTHENTICATED", "UNAUTHENTICATED"]


async def test_one_failed_field_keeps_its_siblings(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other_sync = await create_sync(runtime, await create_world(runtime))
    body = await gql(
        client,
        "query($id: ID!) { viewer { role } audienceSync(id: $id) { id } }",
        {"id": str(other_sync.id)},
        token=world.viewer_token,
    )
    assert body["data"] == {"viewer": {"role": "viewer"}, "audienceSync": None}
    error = only_error(body)
    assert error["extensions"]["code"] == "NOT_FOUND" and error["path"] == ["audienceSync"]


async def test_unexpected_error_is_masked(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(syncs, "list_audience_syncs", broken)
    body = await gql(
        client, "{ viewer { role } audienceSyncs { totalCount } }", token=world.admin_token
    )
    assert "secret detail" not in str(body)
    assert body["data"] == {"viewer": {"role": "admin"}, "audienceSyncs": None}
    error = only_error(body)
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert error["path"] == ["audienceSyncs"]


async def test_syntax_error_is_parse_failed(client: httpx.AsyncClient, world: World) -> None:
    body = await gql(client, "{ viewer { role ", token=world.admin_token)
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_PARSE_FAILED"]


async def test_unknown_field_is_validation_failed(client: httpx.AsyncClient, world: World) -> None:
    body = await gql(client, "{ viewer { password } }", token=world.admin_token)
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_variable_of_the_wrong_type_is_bad_user_input(
    client: httpx.AsyncClient, world: World
) -> None:
    body = await gql(
        client,
        "query($first: Int!) { audienceSyncs(first: $first) { totalCount } }",
        {"first": "many"},
        token=world.admin_token,
    )
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]


def _nested(wraps: int) -> str:
    """syncRun { sync { runs { edges { node { … id } } } } }: 2 + 4 * wraps levels deep."""
    selection = "id"
    for _ in range(wraps):
        selection = f"sync {{ runs {{ edges {{ node {{ {selection} }} }} }} }}"
    return f'{{ syncRun(id: "00000000-0000-0000-0000-000000000000") {{ {selection} }} }}'


async def test_too_deep_query_is_rejected_before_it_runs(
    client: httpx.AsyncClient, world: World
) -> None:
    assert 2 + 4 * 2 == MAX_DEPTH
    at_limit = await gql(client, _nested(2), token=world.admin_token)
    assert error_codes(at_limit) == ["NOT_FOUND"]  # valid, so it ran
    deep = await gql(client, _nested(3), token=world.admin_token)
    assert deep["data"] is None
    error = only_error(deep)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert f"exceeds maximum operation depth of {MAX_DEPTH}" in error["message"]


async def test_too_many_aliases_are_rejected(client: httpx.AsyncClient, world: World) -> None:
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: viewer {{ role }}" for i in range(count)) + " }"

    allowed = data(await gql(client, aliased(MAX_ALIASES), token=world.admin_token))
    assert len(allowed) == MAX_ALIASES
    rejected = await gql(client, aliased(MAX_ALIASES + 1), token=world.admin_token)
    assert rejected["data"] is None
    error = only_error(rejected)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in error["message"]


async def test_too_many_tokens_are_rejected(client: httpx.AsyncClient, world: World) -> None:
    huge = "{ viewer { " + "role " * MAX_TOKENS + "} }"
    body = await gql(client, huge, token=world.admin_token)
    assert body["data"] is None
    error = only_error(body)
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in error["message"]


async def test_standard_introspection_query_fits_the_limits(
    client: httpx.AsyncClient,
) -> None:
    body = data(await gql(client, get_introspection_query(descriptions=True)))
    types = {t["name"] for t in body["__schema"]["types"]}
    assert {"AudienceSync", "SyncRun", "PageInfo", "DateTime"} <= types


@pytest.fixture
async def closed_app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings.model_copy(update={"graphql_introspection": False}))
    yield app
    await app.state.runtime.close()


async def test_introspection_can_be_switched_off(closed_app: Starlette, world: World) -> None:
    transport = httpx.ASGITransport(app=closed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = await gql(client, "{ __schema { queryType { name } } }", token=world.admin_token)
        assert body["data"] is None
        assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in body["errors"][0]["message"].lower()
        still = data(await gql(client, "{ viewer { role } }", token=world.admin_token))
        assert still == {"viewer": {"role": "admin"}}
        ide = await client.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 404
