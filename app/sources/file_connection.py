"""SQLite and DuckDB sources: in-process engines with synchronous drivers only (duckdb-engine has
no async dialect), so each connection runs on one dedicated worker thread, as aiosqlite does, and
the event loop never blocks. That thread gives direct access to the driver hooks the timeout
needs: a progress handler with a deadline on SQLite, `interrupt()` from a watchdog timer on
DuckDB; either bounds each step (the query's start and each fetched batch). SQLite files open
read-only (`mode=ro`) and cannot ATTACH others; DuckDB files open read-only without external
access (no `read_csv`, `ATTACH` or `COPY` of other files) and compare times in UTC."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.request import pathname2url

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from app.sources.source_connection import (
    FetchedRows,
    SourceConnection,
    fetched,
)
from app.sources.urls import IN_MEMORY
from models.enums import SourceType

T = TypeVar("T")
#: SQLite VM instructions between two looks at the deadline.
PROGRESS_STEPS = 10_000
DUCKDB_CONFIG = {
    "enable_external_access": False,  # no read_csv('/etc/passwd'), ATTACH or COPY from a model
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class _DeadlineGuard:
    """SQLite: a progress handler aborts the running statement once the deadline has passed."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline: float | None = None
        self.fired = False
        self.connection: sqlite3.Connection | None = None

    def progress(self) -> int:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.fired = True
            return 1
        return 0

    @contextmanager
    def armed(self) -> Iterator[None]:
        self.fired = False
        self.deadline = time.monotonic() + self.timeout
        try:
            yield
        finally:
            self.deadline = None

    def interrupt_now(self) -> None:
        if self.connection is not None:
            self.connection.interrupt()


class _WatchdogGuard:
    """DuckDB: a timer interrupts the connection if the step is still running at the timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.fired = False
        self.interrupt: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._step = 0
        self._running = False

    @contextmanager
    def armed(self) -> Iterator[None]:
        with self._lock:
            self._step += 1
            self._running = True
            self.fired = False
        timer = threading.Timer(self.timeout, self._fire, (self._step,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._running = False

    def _fire(self, step: int) -> None:
        with self._lock:
            if self._running and step == self._step:
                self.fired = True
                self.interrupt_now()

    def interrupt_now(self) -> None:
        if self.interrupt is not None:
            self.interrupt()


class FileConnection(SourceConnection):
    """SQLite or DuckDB through SQLAlchemy's sync engine, on one dedicated worker thread."""

    def __init__(
        self, engine: Engine, guard: _DeadlineGuard | _WatchdogGuard, url: URL, timeout: float
    ) -> None:
        super().__init__(engine.dialect, url, timeout)
        self._engine = engine
        self._guard = guard
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="source")
        self._connection: Connection | None = None

    @classmethod
    async def open(
        cls, source_type: SourceType, url: URL, statement_timeout: float
    ) -> FileConnection:
        guard: _DeadlineGuard | _WatchdogGuard
        if source_type is SourceType.sqlite:
            guard = _DeadlineGuard(statement_timeout)
            engine = _sqlite_engine(url.database, guard)
        else:
            guard = _WatchdogGuard(statement_timeout)
            engine = _duckdb_engine(url.database)
        self = cls(engine, guard, url, statement_timeout)
        try:
            self._connection = await self._call(engine.connect, "config.url")
        except BaseException:
            await self.close()
            raise
        if isinstance(guard, _WatchdogGuard):
            guard.interrupt = self._connection.connection.dbapi_connection.interrupt  # type: ignore[union-attr]
        return self

    @property
    def _conn(self) -> Connection:
        assert self._connection is not None, "connection is closed"
        return self._connection

    async def _call(self, step: Callable[[], T], field: str) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._guarded, step)
        try:
            return await future
        except asyncio.CancelledError:
            self._guard.interrupt_now()  # frees the worker thread for the rollback and close
            raise
        except DBAPIError as exc:
            timed_out = self._guard.fired
            if self._connection is not None:
                await loop.run_in_executor(self._executor, self._rollback)
            raise self.error(exc, field, timed_out=timed_out) from None

    def _guarded(self, step: Callable[[], T]) -> T:
        with self._guard.armed():
            return step()

    def _rollback(self) -> None:
        try:
            self._conn.rollback()
        except Exception:  # the connection is gone; the next statement reports it
            pass

    async def fetch(self, statement: Executable, *, field: str = "query") -> FetchedRows:
        return await self._call(lambda: fetched(self._conn.execute(statement)), field)

    async def stream(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        streaming = self._conn.execution_options(stream_results=True)
        result = await self._call(lambda: streaming.execute(statement), field)
        try:
            while batch := await self._call(lambda: result.fetchmany(batch_size), field):
                yield batch
        finally:
            await asyncio.get_running_loop().run_in_executor(self._executor, result.close)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                await loop.run_in_executor(self._executor, connection.close)
            await loop.run_in_executor(self._executor, self._engine.dispose)
        finally:
            self._executor.shutdown(wait=False)


def _sqlite_engine(database: str | None, guard: _DeadlineGuard) -> Engine:
    def connect() -> sqlite3.Connection:
        if database in IN_MEMORY:
            connection = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            uri = f"file:{pathname2url(str(database))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)  # no ATTACH of other files
        connection.set_progress_handler(guard.progress, PROGRESS_STEPS)
        guard.connection = connection
        return connection

    return sa.create_engine("sqlite://", creator=connect, poolclass=sa.NullPool)


def _duckdb_engine(database: str | None) -> Engine:
    in_memory = database in IN_MEMORY
    engine = sa.create_engine(
        URL.create("duckdb", database=":memory:" if in_memory else str(Path(str(database)))),
        poolclass=sa.NullPool,
        connect_args={"read_only": not in_memory, "config": dict(DUCKDB_CONFIG)},
    )

    @sa.event.listens_for(engine, "connect")
    def _utc(dbapi_connection: Any, record: Any) -> None:
        # Naive TIMESTAMP values compare with TIMESTAMPTZ ones in UTC, whatever the host's zone.
        dbapi_connection.execute("SET TimeZone = 'UTC'")

    return engine
