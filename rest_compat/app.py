"""REST application (filled in by the REST layer)."""

from __future__ import annotations

from starlette.routing import Router

from app.runtime import Runtime


def build_rest_app(runtime: Runtime) -> Router:
    return Router(routes=[])
