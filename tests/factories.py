"""Factories: whole test worlds built through the real service layer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from app.context import ServiceContext
from app.runtime import Runtime
from app.services import audiences, destinations, parent_models, sources, syncs, tokens
from app.services.workspaces import bootstrap
from models import AudienceSync
from tests.services import unique_name


@dataclass
class World:
    """One workspace and what a test usually needs in it."""

    workspace_id: uuid.UUID
    admin_token: str
    editor_token: str
    viewer_token: str
    source_id: uuid.UUID
    model_id: uuid.UUID
    audience_id: uuid.UUID
    destination_id: uuid.UUID
    account_id: uuid.UUID
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: str = "admin") -> dict[str, str]:
        token = {
            "admin": self.admin_token,
            "editor": self.editor_token,
            "viewer": self.viewer_token,
        }[role]
        return {"Authorization": f"Bearer {token}", "X-Workspace-ID": str(self.workspace_id)}

    def sync_body(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": "High-Value Customers to Google Ads",
            "audience_id": str(self.audience_id),
            "destination_id": str(self.destination_id),
            "field_mapping": [{"source_column": "email", "destination_field": "hashedEmail"}],
            "sync_mode": "mirror",
            "schedule": "0 */4 * * *",
        }
        body.update(overrides)
        return body


@asynccontextmanager
async def as_token(runtime: Runtime, token: str) -> AsyncIterator[ServiceContext]:
    async with runtime.context(f"Bearer {token}") as ctx:
        yield ctx


async def create_world(runtime: Runtime, name: str | None = None) -> World:
    async with runtime.database.session() as session:
        boot = await bootstrap(
            session,
            workspace_name=name or unique_name("ws"),
            email=f"{unique_name('admin')}@example.com",
        )
    wid = boot.workspace.id
    async with as_token(runtime, boot.token) as ctx:
        editor = await tokens.create_token(
            ctx,
            workspace_id=wid,
            data={"name": "editor", "email": f"{unique_name('ed')}@example.com", "role": "editor"},
        )
        viewer = await tokens.create_token(
            ctx,
            workspace_id=wid,
            data={"name": "viewer", "email": f"{unique_name('vw')}@example.com", "role": "viewer"},
        )
        source = await sources.create_source(
            ctx,
            workspace_id=wid,
            data={
                "name": "warehouse",
                "type": "sqlite",
                "config": {"url": "sqlite:///customers.db"},
            },
        )
        model = await parent_models.create_model(
            ctx,
            workspace_id=wid,
            data={
                "name": "customers",
                "source_id": str(source.id),
                "table": "customers",
                "primary_key": "id",
            },
        )
        audience = await audiences.create_audience(
            ctx,
            workspace_id=wid,
            data={
                "name": "high value",
                "model_id": str(model.id),
                "filter": {"column": "lifetime_value", "op": "gte", "value": 500},
            },
        )
        destination = await destinations.create_destination(
            ctx,
            workspace_id=wid,
            data={
                "name": "hook",
                "type": "webhook",
                "config": {"url": "https://hooks.example.com/in", "secret": "s3cret"},
            },
        )
    assert editor.secret and viewer.secret
    return World(
        workspace_id=wid,
        admin_token=boot.token,
        editor_token=editor.secret,
        viewer_token=viewer.secret,
        source_id=source.id,
        model_id=model.id,
        audience_id=audience.id,
        destination_id=destination.id,
        account_id=boot.account.id,
    )


async def create_sync(runtime: Runtime, world: World, **overrides: Any) -> AudienceSync:
    async with as_token(runtime, world.admin_token) as ctx:
        return await syncs.create_audience_sync(
            ctx, workspace_id=world.workspace_id, data=world.sync_body(**overrides)
        )


async def table_counts(runtime: Runtime) -> dict[str, int]:
    """Row count of every table: compare before/after to prove nothing was written."""
    counts: dict[str, int] = {}
    async with runtime.database.session() as session:
        for name, table in SQLModel.metadata.tables.items():
            counts[name] = (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
    return counts
