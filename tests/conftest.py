"""Fixtures: the app on real SQLite and real PostgreSQL, and factories of test worlds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from app.asgi import create_app
from app.db import migrate
from app.runtime import Runtime
from app.settings import Settings
from tests.destinations.receiver import Receiver
from tests.factories import World, create_world
from tests.servers import serve_in_thread
from tests.services import POSTGRES_ADMIN_URL, require_reachable, unique_name

DIALECTS = ["sqlite", "postgres"]


@pytest.fixture
def receiver() -> Receiver:
    """A real webhook receiver that checks the `hook-secret` signature (tests/sync overrides it
    with an unsigned one)."""
    return Receiver(secret="hook-secret")


@pytest.fixture
def hook_url(receiver: Receiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signalsmith")


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    require_reachable("PostgreSQL", POSTGRES_ADMIN_URL)
    name = unique_name("signalsmith_test")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(dialect: str, data_dir: Path, request: pytest.FixtureRequest) -> Settings:
    folder = data_dir / dialect
    folder.mkdir(exist_ok=True)
    if dialect == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'signalsmith.db'}"
    else:
        url = request.getfixturevalue("postgres_database_url")
    return Settings(
        database_url=url,
        source_files_dir=folder / "sources",
        redis_url=None,
        secret_key=request.getfixturevalue("secret_key"),
    )


@pytest.fixture(scope="session")
def secret_key() -> str:
    """The credentials key of this test session (no key file is written anywhere)."""
    return Fernet.generate_key().decode()


@pytest.fixture(scope="session", params=DIALECTS)
def settings(request: pytest.FixtureRequest, data_dir: Path) -> Settings:
    settings = make_settings(request.param, data_dir, request)
    migrate(settings.database_url)
    return settings


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(settings)
    yield app
    await app.state.runtime.close()


@pytest.fixture(scope="session")
def runtime(app: Starlette) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def world(runtime: Runtime) -> World:
    """A fresh workspace with admin/editor/viewer tokens and one of each object."""
    return await create_world(runtime)
