"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from app.asgi import create_app
from app.logging import JsonFormatter, request_id_var
from app.settings import Settings
from tests.factories import World
from tests.services import REDIS_URL, require_reachable


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


async def _ready(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            return await client.get("/readyz")
    finally:
        await app.state.runtime.close()


async def test_readyz_checks_redis_when_configured(settings: Settings) -> None:
    require_reachable("Redis", REDIS_URL)
    ok = await _ready(settings.model_copy(update={"redis_url": REDIS_URL}))
    assert ok.status_code == 200 and ok.json()["checks"]["redis"] == "ok"
    down = await _ready(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert down.status_code == 503
    assert down.json()["checks"] == {"database": "ok", "redis": "unreachable"}


async def test_readyz_reports_an_unreachable_database(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    )
    response = await _ready(broken)
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"


async def test_metrics_count_requests_per_route_template(
    client: httpx.AsyncClient, world: World
) -> None:
    await client.get("/healthz")
    await client.get(
        f"/api/v1/workspaces/{world.workspace_id}/audience-syncs", headers=world.headers()
    )
    text = (await client.get("/metrics")).text
    assert 'signalsmith_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "signalsmith_http_request_duration_seconds_bucket" in text
    assert str(world.workspace_id) not in text  # templates, not raw paths


async def test_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="signalsmith.http"):
        response = await client.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
    assert response.headers["x-request-id"] == "req-abc-123"
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32 and generated != "req-abc-123"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    mine = [line for line in lines if line["request_id"] == "req-abc-123"]
    assert mine and mine[0]["route"] == "/healthz" and mine[0]["status"] == 200


def test_json_formatter_emits_one_json_object_with_request_id() -> None:
    token = request_id_var.set("rid-1")
    try:
        record = logging.getLogger("t").makeRecord(
            "t", logging.INFO, __file__, 1, "hello %s", ("x",), None, extra={"custom": 5}
        )
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x" and line["request_id"] == "rid-1" and line["custom"] == 5
