"""Authorization matrix over every REST route: 401/403/404, and nothing changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from tests.e2e.conftest import ADMIN, RANK, READ, WRITE, Scene
from tests.factories import table_counts


@dataclass(frozen=True)
class RestRoute:
    method: str
    template: str
    role: str  # the least role that may call it
    body: Any = None
    #: Under /workspaces/{ws}; an unscoped route answers any valid token alike.
    scoped: bool = True


BODY = {"name": "x"}
ROUTES = [
    RestRoute("GET", "/workspaces/{ws}", READ),
    RestRoute("GET", "/workspaces/{ws}/audience-syncs", READ),
    RestRoute("POST", "/workspaces/{ws}/audience-syncs", WRITE, BODY),
    RestRoute("GET", "/workspaces/{ws}/audience-syncs/{sync}", READ),
    RestRoute("PUT", "/workspaces/{ws}/audience-syncs/{sync}", WRITE, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/audience-syncs/{sync}", WRITE),
    RestRoute("POST", "/workspaces/{ws}/audience-syncs/{sync}/trigger", WRITE, {}),
    RestRoute("GET", "/workspaces/{ws}/audience-syncs/{sync}/runs", READ),
    RestRoute("GET", "/workspaces/{ws}/audience-syncs/{sync}/runs/{run}", READ),
    RestRoute("POST", "/workspaces/{ws}/runs/{run}/cancel", WRITE),
    RestRoute("GET", "/workspaces/{ws}/runs/{run}/events", READ),
    RestRoute("GET", "/workspaces/{ws}/runs/{run}/rows", READ),
    RestRoute("GET", "/workspaces/{ws}/sources", READ),
    RestRoute("POST", "/workspaces/{ws}/sources", WRITE, BODY),
    RestRoute("GET", "/workspaces/{ws}/sources/{source}", READ),
    RestRoute("PUT", "/workspaces/{ws}/sources/{source}", WRITE, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/sources/{source}", WRITE),
    RestRoute("POST", "/workspaces/{ws}/sources/{source}/check", READ),
    RestRoute("GET", "/workspaces/{ws}/models", READ),
    RestRoute("POST", "/workspaces/{ws}/models", WRITE, BODY),
    RestRoute("GET", "/workspaces/{ws}/models/{model}", READ),
    RestRoute("PUT", "/workspaces/{ws}/models/{model}", WRITE, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/models/{model}", WRITE),
    RestRoute("POST", "/workspaces/{ws}/models/{model}/refresh", WRITE),
    RestRoute("GET", "/workspaces/{ws}/audiences", READ),
    RestRoute("POST", "/workspaces/{ws}/audiences", WRITE, BODY),
    RestRoute("GET", "/workspaces/{ws}/audiences/{audience}", READ),
    RestRoute("PUT", "/workspaces/{ws}/audiences/{audience}", WRITE, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/audiences/{audience}", WRITE),
    RestRoute("POST", "/workspaces/{ws}/audiences/{audience}/preview", READ, {}),
    RestRoute("GET", "/workspaces/{ws}/audiences/{audience}/split-groups", READ),
    RestRoute(
        "PUT",
        "/workspaces/{ws}/audiences/{audience}/split-groups",
        WRITE,
        [{"name": "A", "percentage": 100}],
    ),
    RestRoute("GET", "/workspaces/{ws}/destinations", READ),
    RestRoute("POST", "/workspaces/{ws}/destinations", WRITE, BODY),
    RestRoute("GET", "/workspaces/{ws}/destinations/{destination}", READ),
    RestRoute("PUT", "/workspaces/{ws}/destinations/{destination}", WRITE, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/destinations/{destination}", WRITE),
    RestRoute("POST", "/workspaces/{ws}/destinations/{destination}/check", READ),
    RestRoute("GET", "/destination-types", READ, scoped=False),
    RestRoute("GET", "/workspaces/{ws}/tokens", ADMIN),
    RestRoute("POST", "/workspaces/{ws}/tokens", ADMIN, BODY),
    RestRoute("DELETE", "/workspaces/{ws}/tokens/{token}", ADMIN),
    RestRoute("GET", "/workspaces/{ws}/audit-log", ADMIN),
]


def url(route: RestRoute, ids: dict[str, uuid.UUID]) -> str:
    return "/api/v1" + route.template.format(**{k: str(v) for k, v in ids.items()})


async def call(
    client: httpx.AsyncClient, route: RestRoute, path: str, token: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.request(route.method, path, headers=headers, json=route.body)


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["code"] and error["message"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_route_refuses_callers_without_the_right(
    client: httpx.AsyncClient, runtime: Runtime, scene: Scene, route: RestRoute
) -> None:
    path = url(route, scene.ids)
    before = await table_counts(runtime)
    assert_error(await call(client, route, path, None), 401)
    assert_error(await call(client, route, path, "ssk_not-a-real-token"), 401)
    assert_error(await call(client, route, path, scene.revoked_token), 401)
    if not route.scoped:
        assert (await call(client, route, path, scene.other.admin_token)).status_code == 200
        assert await table_counts(runtime) == before
        return
    assert_error(await call(client, route, path, scene.other.admin_token), 403)
    for role in (READ, WRITE):
        if RANK[role] < RANK[route.role]:
            token = scene.world.editor_token if role == WRITE else scene.world.viewer_token
            assert_error(await call(client, route, path, token), 403)
    if "{" in route.template.replace("{ws}", ""):
        # An object of another workspace, asked for in one's own: absent, not forbidden.
        foreign_path = url(route, {**scene.foreign, "ws": scene.world.workspace_id})
        assert_error(await call(client, route, foreign_path, scene.world.admin_token), 404)
    assert await table_counts(runtime) == before


async def test_the_matrix_covers_every_documented_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    documented = {
        (method.upper(), _shape(path.removeprefix("/api/v1")))
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    covered = {(r.method, _shape(r.template)) for r in ROUTES}
    assert covered <= documented
    assert documented - covered <= {("GET", "/openapi.json")}


def _shape(path: str) -> str:
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))
