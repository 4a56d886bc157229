"""Relay connections: totalCount, pageInfo and cursors that round-trip."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import World, create_sync
from tests.graphql.client import data, error_codes, error_fields, gql

PAGE = """
query Page($first: Int!, $after: String) {
  audienceSyncs(first: $first, after: $after) {
    totalCount
    edges { cursor node { name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_cursors_walk_every_sync_once_in_order(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    names = [f"sync {i}" for i in range(5)]
    for name in names:
        await create_sync(runtime, world, name=name)
    seen: list[str] = []
    after: str | None = None
    pages = []
    while True:
        page = data(
            await gql(client, PAGE, {"first": 2, "after": after}, token=world.viewer_token)
        )["audienceSyncs"]
        pages.append(page)
        assert page["totalCount"] == 5
        seen += [edge["node"]["name"] for edge in page["edges"]]
        info = page["pageInfo"]
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == names
    assert [len(p["edges"]) for p in pages] == [2, 2, 1]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    cursors = [edge["cursor"] for p in pages for edge in p["edges"]]
    assert len(set(cursors)) == 5


async def test_default_page_and_empty_page(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    for i in range(3):
        await create_sync(runtime, world, name=f"s{i}")
    whole = data(
        await gql(
            client, "{ audienceSyncs { totalCount edges { cursor } } }", token=world.admin_token
        )
    )
    assert whole["audienceSyncs"]["totalCount"] == 3
    assert len(whole["audienceSyncs"]["edges"]) == 3
    empty = data(await gql(client, PAGE, {"first": 0}, token=world.admin_token))["audienceSyncs"]
    assert empty["edges"] == [] and empty["totalCount"] == 3
    assert empty["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
    last = whole["audienceSyncs"]["edges"][-1]["cursor"]
    beyond = data(await gql(client, PAGE, {"first": 5, "after": last}, token=world.admin_token))
    assert beyond["audienceSyncs"]["edges"] == []
    assert beyond["audienceSyncs"]["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("first", [101, -1])
async def test_page_size_out_of_bounds_is_bad_user_input(
    client: httpx.AsyncClient, world: World, first: int
) -> None:
    for connection in ("audienceSyncs", "audiences", "destinations", "sources", "models"):
        body = await gql(
            client,
            f"query($first: Int!) {{ {connection}(first: $first) {{ totalCount }} }}",
            {"first": first},
            token=world.admin_token,
        )
        assert error_codes(body) == ["BAD_USER_INPUT"], connection
        assert error_fields(body) == ["first"]


@pytest.mark.parametrize("cursor", ["garbage!", "b2Zmc2V0Oi0x", "bm90IGEgY3Vyc29y"])
async def test_bad_cursor_is_bad_user_input(
    client: httpx.AsyncClient, world: World, cursor: str
) -> None:
    body = await gql(client, PAGE, {"first": 2, "after": cursor}, token=world.admin_token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["after"]


async def test_audit_log_is_a_connection_newest_first(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await create_sync(runtime, world, name="audited")
    body = data(
        await gql(
            client,
            "{ auditLog(first: 2) { totalCount edges { node { action targetType detail at } } } }",
            token=world.admin_token,
        )
    )["auditLog"]
    assert body["totalCount"] == 8  # bootstrap, two tokens, four catalog objects, the sync
    newest = body["edges"][0]["node"]
    assert newest["action"] == "audience_sync.create" and newest["detail"] == {"name": "audited"}
    assert newest["at"].endswith("Z")
    forbidden = await gql(client, "{ auditLog { totalCount } }", token=world.editor_token)
    assert error_codes(forbidden) == ["FORBIDDEN"]
