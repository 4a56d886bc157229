"""The one place that mounts both transports, the operational endpoints and the console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from app.http import RequestObservation
from app.metrics import Metrics
from app.runtime import Runtime
from app.settings import Settings, get_settings
from app.web import web_routes
from graphql_schema.app import build_graphql_app
from jobs.scheduler import run_scheduler
from rest_compat.app import build_rest_app


def create_app(settings: Settings | None = None, *, with_scheduler: bool = False) -> Starlette:
    """The ASGI app; `serve` runs it with the scheduler, tests build it without."""
    settings = settings or get_settings()
    runtime = Runtime(settings)
    metrics = Metrics()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            async with runtime.database.session() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unreachable"
        if settings.redis_url:
            checks["redis"] = await _redis_check(settings.redis_url)
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(_: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        scheduler = asyncio.create_task(run_scheduler(runtime, stop)) if with_scheduler else None
        try:
            yield
        finally:
            stop.set()
            if scheduler is not None:
                await scheduler
            await runtime.close()

    # Routes, not a Mount: a Mount only matches "/graphql/…" and would redirect "/graphql".
    graphql_app = build_graphql_app(runtime, metrics)
    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Mount("/api/v1", app=build_rest_app(runtime)),
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            *web_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.add_middleware(RequestObservation, metrics=metrics)
    return app


async def _redis_check(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
        return "ok"
    except Exception:
        return "unreachable"
    finally:
        await client.aclose()
