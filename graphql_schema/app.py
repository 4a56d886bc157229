"""The GraphQL ASGI app: HTTP and WebSocket (graphql-transport-ws, graphql-ws) at /graphql."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from app.metrics import Metrics
from app.runtime import Runtime
from graphql_schema.context import GraphQLContext
from graphql_schema.schema import build_schema

#: Where a request's context is kept (in the ASGI scope's state) until the request ends.
CONTEXT_KEY = "signalsmith.graphql_context"


class GraphQLApp(GraphQL[GraphQLContext, None]):
    def __init__(self, runtime: Runtime, metrics: Metrics) -> None:
        introspection = runtime.settings.graphql_introspection
        super().__init__(
            build_schema(metrics=metrics, introspection=introspection),
            graphql_ide="graphiql" if introspection else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
        self.runtime = runtime

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphQLContext:
        context = GraphQLContext(self.runtime, request.headers.get("authorization"))
        request.scope.setdefault("state", {})[CONTEXT_KEY] = context
        return context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then close its session (for a WebSocket: the connection's)."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            context = scope.get("state", {}).get(CONTEXT_KEY)
            if isinstance(context, GraphQLContext):
                await context.close()


def build_graphql_app(runtime: Runtime, metrics: Metrics) -> GraphQLApp:
    return GraphQLApp(runtime, metrics)
