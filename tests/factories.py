"""Factories: whole test worlds built through the real service layer."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from app.context import ServiceContext
from app.runtime import Runtime
from app.services import audiences, destinations, parent_models, sources, syncs, tokens
from app.services.workspaces import bootstrap
from models import AudienceSync
from tests.services import unique_name

#: The `customers` table of every world's source: (id, email, country, lifetime_value, plan,
#: created_at). The world's audience (lifetime_value >= 500) holds ids 1, 2, 5 and 6.
CUSTOMERS: list[tuple[int, str | None, str, float, str, str]] = [
    (1, "ada@example.com", "US", 1200.0, "pro", "2023-01-05T10:00:00Z"),
    (2, "bob@example.com", "CA", 800.0, "basic", "2023-02-11T08:30:00Z"),
    (3, "cyd@example.com", "FR", 150.5, "pro", "2023-03-20T17:45:00Z"),
    (4, "dee@example.com", "US", 49.99, "basic", "2023-04-02T09:15:00Z"),
    (5, "eve@example.com", "DE", 500.0, "enterprise", "2023-05-30T23:59:59Z"),
    (6, None, "US", 2300.0, "pro", "2023-06-01T00:00:00Z"),
    (7, "fay@example.com", "CA", 0.0, "basic", "2023-07-14T12:00:00Z"),
]
HIGH_VALUE_IDS = [1, 2, 5, 6]
CUSTOMER_COLUMNS = ["id", "email", "country", "lifetime_value", "plan", "created_at"]


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
    #: The world's SQLite source file (under the sources folder); add rows with `add_customers`.
    source_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def source_url(self) -> str:
        """A URL of the world's source file (another source may be created on it)."""
        return f"sqlite:///{self.source_path.name}"

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
    source_file = write_source_file(runtime.settings.resolved_source_files_dir)
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
                "config": {"url": f"sqlite:///{source_file.name}"},
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
        source_path=source_file,
    )


def write_source_file(folder: Path) -> Path:
    """A fresh SQLite source under `folder`: `customers` (CUSTOMERS) and their `events`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{unique_name('customers')}.db"
    now = datetime.now(UTC)
    events = [
        (1, 1, "purchase", now - timedelta(days=2)),
        (2, 1, "purchase", now - timedelta(days=10)),
        (3, 1, "visit", now - timedelta(days=1)),
        (4, 2, "purchase", now - timedelta(days=90)),
        (5, 3, "purchase", now - timedelta(days=5)),
        (6, 5, "visit", now - timedelta(days=3)),
    ]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, country TEXT, "
            "lifetime_value REAL, plan TEXT, created_at TIMESTAMP)"
        )
        connection.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER, type TEXT, "
            "at TIMESTAMP)"
        )
        connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", CUSTOMERS)
        connection.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [(i, c, t, at.isoformat().replace("+00:00", "Z")) for i, c, t, at in events],
        )
    connection.close()
    return path


def add_customers(world: World, rows: Sequence[Sequence[Any]]) -> None:
    """More `customers` rows in the world's source, written straight into the file."""
    with sqlite3.connect(world.source_path) as connection:
        connection.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.close()


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
