"""The REST transport itself: authentication order, the workspace header, path ids, unknown
routes and methods, body limits and malformed JSON, and the 500 envelope."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.errors import InvalidInput
from app.runtime import Runtime
from app.services import workspaces
from tests.factories import World, create_sync, create_world, table_counts
from tests.rest.support import assert_error, base


async def test_no_or_bad_token_is_401_before_anything_else(
    client: httpx.AsyncClient, world: World
) -> None:
    url = f"{base(world)}/audience-syncs"
    mismatched = {"X-Workspace-ID": str(uuid.uuid4())}
    for headers in (
        mismatched,
        {**mismatched, "Authorization": "Basic abc"},
        {**mismatched, "Authorization": "Bearer ssk_not-a-token"},
    ):
        error = assert_error(await client.post(url, headers=headers, content=b"{not json"), 401)
        assert error["code"] == "unauthenticated"
    error = assert_error(await client.get("/api/v1/workspaces/not-a-uuid/sources"), 401)
    assert error["code"] == "unauthenticated"


@pytest.mark.parametrize("header", [str(uuid.uuid4()), "not-a-uuid", ""])
async def test_workspace_header_must_match_the_path(
    client: httpx.AsyncClient, runtime: Runtime, world: World, header: str
) -> None:
    before = await table_counts(runtime)
    headers = {**world.headers(), "X-Workspace-ID": header}
    response = await client.post(
        f"{base(world)}/audience-syncs", headers=headers, json=world.sync_body()
    )
    error = assert_error(response, 400, "X-Workspace-ID")
    assert error["code"] == "bad_request"
    assert await table_counts(runtime) == before


async def test_workspace_header_is_optional(client: httpx.AsyncClient, world: World) -> None:
    headers = {"Authorization": f"Bearer {world.viewer_token}"}
    response = await client.get(base(world), headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(world.workspace_id)
    assert set(response.json()) == {"id", "name", "slug", "created_at"}


async def test_another_workspace_is_forbidden(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    response = await client.get(
        f"{base(other)}/audience-syncs",
        headers={"Authorization": f"Bearer {world.admin_token}"},
    )
    assert_error(response, 403, str(other.workspace_id))


async def test_a_viewer_cannot_write(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    response = await client.post(
        f"{base(world)}/audience-syncs", headers=world.headers("viewer"), json=world.sync_body()
    )
    assert assert_error(response, 403)["code"] == "forbidden"
    assert await table_counts(runtime) == before


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/audience-syncs/{raw}", "12345"),
        ("/audience-syncs/{raw}/runs", "nope"),
        ("/runs/{raw}/events", "abc-def"),
        ("/sources/{raw}", "x"),
        ("/models/{raw}", "1"),
        ("/audiences/{raw}", "zzz"),
        ("/destinations/{raw}", "dest"),
    ],
)
async def test_a_malformed_object_id_is_not_found(
    client: httpx.AsyncClient, world: World, path: str, raw: str
) -> None:
    response = await client.get(base(world) + path.format(raw=raw), headers=world.headers())
    error = assert_error(response, 404, "id")
    assert error["code"] == "not_found" and raw in error["message"]


async def test_a_malformed_workspace_id_is_not_found(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = {"Authorization": f"Bearer {world.admin_token}"}
    error = assert_error(await client.get("/api/v1/workspaces/w-1/sources", headers=headers), 404)
    assert "w-1" in error["message"]


async def test_a_sync_of_another_workspace_looks_absent(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    foreign = await create_sync(runtime, other)
    response = await client.get(
        f"{base(world)}/audience-syncs/{foreign.id}", headers=world.headers()
    )
    assert_error(response, 404, str(foreign.id))


@pytest.mark.parametrize("path", ["/nothing-here", "/audience-syncs/", "/audience-syncs/x/y/z/w"])
async def test_unknown_paths_are_404_envelopes(
    client: httpx.AsyncClient, world: World, path: str
) -> None:
    error = assert_error(await client.get(base(world) + path, headers=world.headers()), 404)
    assert error["code"] == "not_found"


async def test_a_wrong_method_is_405_listing_the_allowed_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.patch(f"{base(world)}/audience-syncs", headers=world.headers())
    error = assert_error(response, 405)
    assert error["code"] == "method_not_allowed"
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "PATCH" not in allowed


async def test_a_body_over_the_limit_is_413(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    limit = runtime.settings.max_body_bytes
    before = await table_counts(runtime)
    huge = b'{"name": "' + b"x" * limit + b'"}'
    response = await client.post(
        f"{base(world)}/audience-syncs", headers=world.headers(), content=huge
    )
    assert assert_error(response, 413, "body")["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    response = await client.post(
        f"{base(world)}/sources", headers=world.headers(), content=chunks()
    )
    assert_error(response, 413, "body")
    assert await table_counts(runtime) == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"name": "x",}',
        b'{"name": NaN}',
        b'{"batch": 1e999}',
        b'{"name": "\\ud800"}',
        b"\xff\xfe\xfa",
        b"[" * 100 + b"]" * 100,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
    ],
    ids=["syntax", "trailing-comma", "nan", "infinity", "surrogate", "not-utf8", "deep", "deeper"],
)
async def test_malformed_json_is_400_naming_the_body(
    client: httpx.AsyncClient, runtime: Runtime, world: World, raw: bytes
) -> None:
    before = await table_counts(runtime)
    response = await client.post(f"{base(world)}/audiences", headers=world.headers(), content=raw)
    error = assert_error(response, 400, "body")
    assert error["code"] == "bad_request"
    assert await table_counts(runtime) == before


@pytest.mark.parametrize("raw", [b"", b"[]", b'"text"', b"null", b"42"])
async def test_a_body_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, runtime: Runtime, world: World, raw: bytes
) -> None:
    before = await table_counts(runtime)
    response = await client.post(
        f"{base(world)}/destinations", headers=world.headers(), content=raw
    )
    assert_error(response, 400, "body")
    assert await table_counts(runtime) == before


async def test_an_unexpected_error_is_a_logged_generic_500(
    client: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("internal detail: password=hunter2")

    monkeypatch.setattr(workspaces, "get_workspace", broken)
    with caplog.at_level(logging.ERROR, logger="signalsmith.rest"):
        response = await client.get(base(world), headers=world.headers())
    error = assert_error(response, 500)
    assert error["code"] == "internal_error"
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    [record] = [r for r in caplog.records if r.name == "signalsmith.rest"]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


async def test_app_errors_keep_their_status_code_and_details(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refusing(*_: object, **__: object) -> None:
        raise InvalidInput.field("colour", "must be blue")

    monkeypatch.setattr(workspaces, "get_workspace", refusing)
    response = await client.get(base(world), headers=world.headers())
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "colour: must be blue",
            "details": [{"field": "colour", "message": "must be blue"}],
        }
    }


@pytest.mark.parametrize("query", ["limt=5", "limit=5&sort=name", "=x"])
async def test_an_unknown_query_parameter_is_400(
    client: httpx.AsyncClient, world: World, query: str
) -> None:
    response = await client.get(f"{base(world)}/audience-syncs?{query}", headers=world.headers())
    error = assert_error(response, 400)
    assert error["code"] == "bad_request" and "unknown query parameter" in error["message"]
    assert_error(
        await client.get(f"{base(world)}/tokens?limit=5", headers=world.headers()), 400, "limit"
    )
