"""The context of one GraphQL request: lazy authentication, one session, the loaders.

Authentication happens on the first resolver that needs the caller, so a request without a
token fails with UNAUTHENTICATED only where it touches such a resolver. The request's session
is shared by all resolvers; since a session is not safe for concurrent use and graphql-core
resolves sibling fields concurrently, every service call holds the request's lock.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, Concatenate, ParamSpec, TypeVar

import strawberry

from app.auth import Principal
from app.context import ServiceContext
from app.errors import Unauthenticated
from app.runtime import Runtime
from graphql_schema.dataloaders import Loaders
from graphql_schema.scalars import parse_id

P = ParamSpec("P")
T = TypeVar("T")


class GraphQLContext:
    def __init__(self, runtime: Runtime, authorization: str | None) -> None:
        self.runtime = runtime
        self.authorization = authorization
        #: The `connection_init` payload of a WebSocket (strawberry sets it).
        self.connection_params: dict[str, Any] | None = None
        # Loaders and the exit stack are made when first needed: a WebSocket's context
        # lives as long as the socket, and most sockets only follow a run (issue 5).
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self._service: ServiceContext | None = None
        self._failure: Unauthenticated | None = None

    async def _open(self) -> ServiceContext:
        """Authenticate once per request (the caller holds the lock)."""
        if self._failure is not None:
            raise self._failure
        if self._service is None:
            if self._stack is None:
                self._stack = AsyncExitStack()
            try:
                self._service = await self._stack.enter_async_context(
                    self.runtime.context(self.authorization)
                )
            except Unauthenticated as exc:
                self._failure = exc
                raise
        return self._service

    @functools.cached_property
    def loaders(self) -> Loaders:
        """This request's batch loaders."""
        return Loaders(self)

    async def service(self) -> ServiceContext:
        """The authenticated service context (for helpers that do not touch the session)."""
        async with self._lock:
            return await self._open()

    async def principal(self) -> Principal:
        return (await self.service()).principal

    async def workspace_id(self, given: strawberry.ID | None = None) -> uuid.UUID:
        """The workspace an argument names, or the token's workspace when it names none."""
        if given is not None:
            return parse_id(given, "workspaceId")
        return (await self.principal()).workspace_id

    async def call(
        self,
        function: Callable[Concatenate[ServiceContext, P], Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run one service function on the request's session, one at a time.

        A failed call leaves nothing behind for later calls of the same request: its
        unflushed changes are dropped (objects already handed out stay loaded) and the
        transaction is rolled back.
        """
        async with self._lock:
            service = await self._open()
            try:
                return await function(service, *args, **kwargs)
            except Exception:
                service.session.expunge_all()
                await service.session.rollback()
                raise

    async def stream(
        self,
        function: Callable[..., Awaitable[T]],
        /,
        *,
        workspace_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> T:
        """Open a subscription's stream on a short-lived context of its own: authentication
        and lookups happen now (refusals surface as errors), and the stream, which outlives
        this context, reads on its own sessions. `workspace_id` defaults to the token's."""
        async with self.runtime.context(self.authorization) as service:
            workspace = workspace_id or service.principal.workspace_id
            return await function(service, workspace_id=workspace, **kwargs)

    async def close(self) -> None:
        """End of the request: close the session (rolling back anything uncommitted)."""
        if self._stack is not None:
            await self._stack.aclose()


Info = strawberry.Info[GraphQLContext, None]
