"""GraphQL application (filled in by the GraphQL layer)."""

from __future__ import annotations

from starlette.routing import Router

from app.metrics import Metrics
from app.runtime import Runtime


def build_graphql_app(runtime: Runtime, metrics: Metrics) -> Router:
    return Router(routes=[])
