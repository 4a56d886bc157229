"""Bad input across the resources: each case gets its 4xx, names the offending field, and
leaves every table exactly as it was."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import World, create_sync, create_world, table_counts
from tests.rest.support import assert_error, base


@dataclass(frozen=True)
class Scene:
    world: World
    #: A second workspace, for references across the boundary.
    other: World | None


Body = Callable[[Scene], Any]


@dataclass(frozen=True)
class Bad:
    id: str
    method: str
    #: Under the workspace; `{sync}` is an existing sync of the world.
    path: str
    body: Body | bytes
    status: int
    #: The field that a detail (or the message) must name.
    names: str
    needs_other: bool = False


def sync(**overrides: Any) -> Body:
    return lambda s: s.world.sync_body(**overrides)


def sync_without(field: str) -> Body:
    return lambda s: {k: v for k, v in s.world.sync_body().items() if k != field}


def source(**overrides: Any) -> Body:
    body = {"name": "dw", "type": "sqlite", "config": {"url": "sqlite:///people.db"}}
    return lambda s: {**body, **overrides}


def model(**overrides: Any) -> Body:
    return lambda s: {
        "name": "people",
        "source_id": str(s.world.source_id),
        "table": "people",
        "primary_key": "id",
        **overrides,
    }


def audience(**overrides: Any) -> Body:
    return lambda s: {"name": "vip", "model_id": str(s.world.model_id), **overrides}


def webhook(url: str) -> Body:
    return lambda s: {"name": "hook", "type": "webhook", "config": {"url": url}}


def token(**overrides: Any) -> Body:
    return lambda s: {"name": "ci", "email": "ci@example.com", "role": "viewer", **overrides}


def mapping(*items: dict[str, str]) -> Body:
    return sync(field_mapping=list(items))


SYNCS, SYNC = "/audience-syncs", "/audience-syncs/{sync}"
EMAIL = {"source_column": "email", "destination_field": "hashedEmail"}
CASES = [
    # Audience syncs: values (422).
    Bad("sync-missing-name", "POST", SYNCS, sync_without("name"), 422, "name"),
    Bad("sync-empty-name", "POST", SYNCS, sync(name=""), 422, "name"),
    Bad("sync-blank-name", "POST", SYNCS, sync(name="   "), 422, "name"),
    Bad("sync-201-char-name", "POST", SYNCS, sync(name="n" * 201), 422, "name"),
    Bad("sync-name-not-a-string", "POST", SYNCS, sync(name=123), 422, "name"),
    Bad("sync-null-name", "POST", SYNCS, sync(name=None), 422, "name"),
    Bad("sync-name-with-nul", "POST", SYNCS, sync(name="a\x00b"), 422, "name"),
    Bad(
        "sync-bad-audience-uuid", "POST", SYNCS, sync(audience_id="not-a-uuid"), 422, "audience_id"
    ),
    Bad(
        "sync-foreign-audience",
        "POST",
        SYNCS,
        lambda s: s.world.sync_body(audience_id=str(s.other.audience_id if s.other else "")),
        422,
        "audience_id",
        needs_other=True,
    ),
    Bad(
        "sync-unknown-destination",
        "POST",
        SYNCS,
        sync(destination_id=str(uuid.uuid4())),
        422,
        "destination_id",
    ),
    Bad("sync-empty-mapping", "POST", SYNCS, mapping(), 422, "field_mapping"),
    Bad(
        "sync-duplicate-destination-field",
        "POST",
        SYNCS,
        mapping(EMAIL, {"source_column": "phone", "destination_field": "hashedEmail"}),
        422,
        "field_mapping",
    ),
    Bad(
        "sync-mapping-item-missing-key",
        "POST",
        SYNCS,
        mapping({"source_column": "email"}),
        422,
        "field_mapping[0].destination_field",
    ),
    Bad("sync-bad-mode", "POST", SYNCS, sync(sync_mode="sideways"), 422, "sync_mode"),
    Bad("sync-bad-cron", "POST", SYNCS, sync(schedule="every day"), 422, "schedule"),
    Bad("sync-six-field-cron", "POST", SYNCS, sync(schedule="0 0 */4 * * *"), 422, "schedule"),
    Bad("sync-config-unknown-key", "POST", SYNCS, sync(config={"colour": 1}), 422, "config.colour"),
    Bad(
        "sync-config-batch-size-0",
        "POST",
        SYNCS,
        sync(config={"batch_size": 0}),
        422,
        "config.batch_size",
    ),
    Bad(
        "sync-bad-timezone",
        "POST",
        SYNCS,
        sync(config={"timezone": "Mars/Olympus"}),
        422,
        "config.timezone",
    ),
    Bad(
        "sync-unknown-split-group",
        "POST",
        SYNCS,
        sync(split_group_id=str(uuid.uuid4())),
        422,
        "split_group_id",
    ),
    Bad("sync-status-error", "POST", SYNCS, sync(status="error"), 422, "status"),
    Bad("sync-put-null-name", "PUT", SYNC, {"name": None}, 422, "name"),
    Bad("sync-put-bad-cron", "PUT", SYNC, {"schedule": "61 * * * *"}, 422, "schedule"),
    Bad(
        "sync-put-unknown-destination",
        "PUT",
        SYNC,
        {"destination_id": str(uuid.uuid4())},
        422,
        "destination_id",
    ),
    # Audience syncs: malformed requests (400).
    Bad("sync-read-only-id", "POST", SYNCS, sync(id=str(uuid.uuid4())), 400, "id"),
    Bad(
        "sync-read-only-created-at",
        "POST",
        SYNCS,
        sync(created_at="2024-01-15T09:30:00Z"),
        400,
        "created_at",
    ),
    Bad("sync-read-only-status-error", "POST", SYNCS, sync(status_error="x"), 400, "status_error"),
    Bad(
        "sync-put-read-only-workspace",
        "PUT",
        SYNC,
        {"workspace_id": str(uuid.uuid4())},
        400,
        "workspace_id",
    ),
    Bad("sync-unknown-field", "POST", SYNCS, sync(colour="blue"), 400, "colour"),
    Bad("sync-malformed-json", "POST", SYNCS, b'{"name": "x"', 400, "body"),
    Bad("sync-array-body", "POST", SYNCS, lambda s: [s.world.sync_body()], 400, "body"),
    Bad("sync-put-array-body", "PUT", SYNC, [], 400, "body"),
    # Sources.
    Bad("source-bad-type", "POST", "/sources", source(type="oracle"), 422, "type"),
    Bad(
        "source-url-of-another-type",
        "POST",
        "/sources",
        source(type="postgres"),
        422,
        "config.url",
    ),
    Bad(
        "source-file-outside-the-folder",
        "POST",
        "/sources",
        source(config={"url": "sqlite:////etc/passwd"}),
        422,
        "config.url",
    ),
    Bad(
        "source-file-climbing-out",
        "POST",
        "/sources",
        source(config={"url": "sqlite:///../../escape.db"}),
        422,
        "config.url",
    ),
    Bad(
        "source-missing-config",
        "POST",
        "/sources",
        lambda s: {"name": "dw", "type": "sqlite"},
        422,
        "config",
    ),
    Bad("source-not-a-url", "POST", "/sources", source(config={"url": "::::"}), 422, "config.url"),
    # Models.
    Bad("model-query-and-table", "POST", "/models", model(query="select 1"), 422, "query"),
    Bad("model-neither-query-nor-table", "POST", "/models", model(table=None), 422, "table"),
    Bad(
        "model-unknown-source",
        "POST",
        "/models",
        model(source_id=str(uuid.uuid4())),
        422,
        "source_id",
    ),
    Bad("model-read-only-columns", "POST", "/models", model(columns=[]), 400, "columns"),
    # Audiences.
    Bad(
        "audience-unknown-model",
        "POST",
        "/audiences",
        audience(model_id=str(uuid.uuid4())),
        422,
        "model_id",
    ),
    Bad("audience-filter-not-object", "POST", "/audiences", audience(filter=[1, 2]), 422, "filter"),
    Bad(
        "audience-filter-with-nul",
        "POST",
        "/audiences",
        audience(filter={"column": "x", "op": "eq", "value": "\x00"}),
        422,
        "filter",
    ),
    # Destinations.
    Bad(
        "destination-unknown-type",
        "POST",
        "/destinations",
        lambda s: {"name": "x", "type": "carrier_pigeon", "config": {}},
        422,
        "type",
    ),
    Bad(
        "webhook-not-http",
        "POST",
        "/destinations",
        webhook("ftp://example.com/x"),
        422,
        "config.url",
    ),
    Bad(
        "webhook-to-loopback",
        "POST",
        "/destinations",
        webhook("http://127.0.0.1:8080/in"),
        422,
        "config.url",
    ),
    Bad(
        "webhook-to-private-network",
        "POST",
        "/destinations",
        webhook("http://10.0.0.5/in"),
        422,
        "config.url",
    ),
    Bad(
        "connector-base-url-malformed",
        "POST",
        "/destinations",
        lambda s: {"name": "x", "type": "iterable", "config": {"base_url": "http://[::1"}},
        422,
        "config.base_url",
    ),
    # Tokens.
    Bad("token-bad-role", "POST", "/tokens", token(role="owner"), 422, "role"),
    Bad("token-bad-email", "POST", "/tokens", token(email="not-an-email"), 422, "email"),
    Bad(
        "token-expired",
        "POST",
        "/tokens",
        token(expires_at="2020-01-01T00:00:00Z"),
        422,
        "expires_at",
    ),
    Bad(
        "token-expiry-without-zone",
        "POST",
        "/tokens",
        token(expires_at="2999-01-01T00:00:00"),
        422,
        "expires_at",
    ),
    Bad(
        "token-expiry-past-year-9999",
        "POST",
        "/tokens",
        token(expires_at="9999-12-31T23:59:59-01:00"),
        422,
        "expires_at",
    ),
    Bad("token-read-only-token", "POST", "/tokens", token(token="ssk_mine"), 400, "token"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_bad_input_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, world: World, case: Bad
) -> None:
    other = await create_world(runtime) if case.needs_other else None
    existing = await create_sync(runtime, world)
    path = base(world) + case.path.format(sync=existing.id)
    before = await table_counts(runtime)
    if isinstance(case.body, bytes):
        response = await client.request(
            case.method, path, headers=world.headers(), content=case.body
        )
    else:
        body = case.body(Scene(world, other)) if callable(case.body) else case.body
        response = await client.request(case.method, path, headers=world.headers(), json=body)
    error = assert_error(response, case.status, case.names)
    assert error["code"] == ("bad_request" if case.status == 400 else "validation_error")
    assert await table_counts(runtime) == before


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
