"""The REST application mounted at /api/v1: the route table, errors, and the OpenAPI document."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.runtime import Runtime
from rest_compat.endpoint import starlette_routes
from rest_compat.errors import EXCEPTION_HANDLERS, UnexpectedErrors
from rest_compat.openapi import DOCUMENT_PATH, build_document
from rest_compat.routes import ENDPOINTS


def build_rest_app(runtime: Runtime) -> Starlette:
    document = build_document(ENDPOINTS, version=_version())

    async def openapi_document(_: Request) -> Response:
        return JSONResponse(document)

    app = Starlette(
        routes=[
            Route(DOCUMENT_PATH, openapi_document, methods=["GET"]),
            *starlette_routes(ENDPOINTS, runtime),
        ],
        middleware=[Middleware(UnexpectedErrors)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # The contract's paths have no trailing slash; another spelling is a 404, not a redirect.
    app.router.redirect_slashes = False
    return app


def _version() -> str:
    try:
        return version("signalsmith")
    except PackageNotFoundError:
        return "0.0.0"
