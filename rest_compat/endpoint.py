"""An endpoint of the route table, and how a request to it becomes a `Call` to its handler."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.runtime import Runtime
from rest_compat.call import Call, check_workspace_header, parse_json, parse_path_id, read_body
from rest_compat.query import QueryParam, parse_query

Handler = Callable[[Call], Awaitable[Response]]

#: The prefix of the routes that act in one workspace (nearly all of them).
WORKSPACE_PATH = "/workspaces/{id}"
#: Every workspace route can answer these (bad header, no/bad token, not a member, no object).
COMMON_ERRORS = (400, 401, 403, 404)
#: A route outside any workspace (the catalogues): an unknown query parameter, no/bad token.
UNSCOPED_ERRORS = (400, 401)


@dataclass(frozen=True)
class Endpoint:
    """One documented method + path: what the server does and what the OpenAPI document says."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    #: The shape of a successful response (of each item when `many`).
    response: type[BaseModel]
    status: int = 200
    many: bool = False
    #: The request body's shape; the raw JSON goes to the service, which validates it.
    body: type[BaseModel] | None = None
    body_required: bool = True
    #: For a body whose absent and null fields differ: the fields that may be null.
    nullable: tuple[str, ...] | None = None
    query: tuple[QueryParam, ...] = ()
    #: Statuses beyond the common ones (409 conflicts).
    also: tuple[int, ...] = ()
    description: str = ""
    #: Also answers `Accept: text/event-stream` with the items as Server-Sent Events.
    event_stream: bool = False

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def scoped(self) -> bool:
        """Acts in the workspace of its path (else: the same for every authenticated caller,
        and `X-Workspace-ID` means nothing to it)."""
        return self.path == WORKSPACE_PATH or self.path.startswith(f"{WORKSPACE_PATH}/")

    @property
    def error_statuses(self) -> list[int]:
        common = COMMON_ERRORS if self.scoped else UNSCOPED_ERRORS
        statuses = set(common) | set(self.also)
        if self.body is not None:
            statuses |= {413, 422}
        if self.query:
            statuses.add(422)
        return sorted(statuses)


async def serve(endpoint: Endpoint, runtime: Runtime, request: Request) -> Response:
    """Read, authenticate, check the workspace (of a scoped endpoint), then hand over to the
    handler.

    The body is read first (so an oversized one is refused before any work) but parsed only
    after authentication, so a caller without a valid token always gets 401.
    """
    raw = await read_body(request, runtime.settings.max_body_bytes) if endpoint.body else b""
    async with runtime.context(request.headers.get("authorization")) as ctx:
        workspace_id: uuid.UUID | None = None
        if endpoint.scoped:
            workspace_id = parse_path_id(request.path_params, "id")
            check_workspace_header(request.headers.get("x-workspace-id"), workspace_id)
        call = Call(
            ctx=ctx,
            scope=workspace_id,
            path=request.path_params,
            query=parse_query(endpoint.query, request.query_params),
            body=parse_json(raw) if endpoint.body else None,
            headers=request.headers,
        )
        return await endpoint.handler(call)


def starlette_routes(endpoints: Iterable[Endpoint], runtime: Runtime) -> list[Route]:
    """One Starlette route per path, so a wrong method is a 405 listing every allowed one."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    return [
        Route(path, _dispatcher(methods, runtime), methods=list(methods))
        for path, methods in by_path.items()
    ]


def _dispatcher(
    methods: Mapping[str, Endpoint], runtime: Runtime
) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await serve(methods[method], runtime, request)

    return dispatch
