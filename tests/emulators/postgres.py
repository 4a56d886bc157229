"""The PostgreSQL destination's peer: a real database (a fresh one on the test server, dropped
by `close()`) holding the target table, `audience`, keyed by a `bigint` primary key `id`.

There is no vendor to imitate, so the emulator's knobs are realised by the database itself,
through statement triggers on the table (with its transition tables) that each write consults:

- `script`: the transaction that writes next (a "request" here is one transaction, numbered by
  a sequence, which no rollback undoes) fails with a real PostgreSQL error whose SQLSTATE is
  one a server sends for that condition: 429 → `55P03` (lock not available), 408/504 →
  `57014` (statement timeout), other 5xx → `40001` (serialization failure), 401/403 → `42501`
  (insufficient privilege), other 4xx → `22023`.
- `poison` and `reject`: a transaction writing (or deleting) one of these keys fails with
  `23514` (check violation), as a CHECK constraint or trigger of the user's would. A table
  cannot refuse one row inside a transaction that commits, so `reject` means the same as
  `poison`: the row refuses its batch, and delivery's bisection isolates it (the outcome the
  contract checks: that row rejected, its neighbours kept).
- `log`: every write transaction with the rows it carried and its outcome; a failed one is
  logged through `dblink` (its own connection, so the rollback keeps the entry).

People are known by their member key (`id` as text); `members()` reads the table.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from starlette.applications import Starlette

from tests.emulators.base import EmulatorBase, RequestLog, Scripted
from tests.services import POSTGRES_ADMIN_URL, require_reachable, unique_name

T = TypeVar("T")
TABLE = "audience"
KEY = "id"

SCHEMA = f"""
CREATE EXTENSION dblink;
CREATE TABLE {TABLE} (
    {KEY} bigint PRIMARY KEY,
    email text, phone text, first_name text, last_name text, plan text, ltv numeric,
    synced_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE emulator_refused (key text NOT NULL, kind text NOT NULL, PRIMARY KEY (key, kind));
CREATE TABLE emulator_script (
    attempt bigint PRIMARY KEY, status integer NOT NULL, sqlstate text NOT NULL,
    delay double precision NOT NULL DEFAULT 0
);
CREATE TABLE emulator_log (
    seq bigserial PRIMARY KEY, attempt bigint NOT NULL, operation text NOT NULL,
    items integer NOT NULL, status integer NOT NULL
);
CREATE TABLE emulator_settings (dsn text NOT NULL);
CREATE SEQUENCE emulator_attempts;

CREATE FUNCTION emulator_watch() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    this_attempt bigint;
    carried integer;
    refused_key text;
    answer integer := 200;
    state text;
    pause double precision := 0;
BEGIN
    SELECT count(*), min(r.key) INTO carried, refused_key
        FROM changed c LEFT JOIN emulator_refused r ON r.key = c.{KEY}::text;
    IF carried = 0 THEN
        RETURN NULL;
    END IF;
    this_attempt := nullif(current_setting('emulator.attempt', true), '')::bigint;
    IF this_attempt IS NULL THEN
        this_attempt := nextval('emulator_attempts');
        PERFORM set_config('emulator.attempt', this_attempt::text, true);
    END IF;
    SELECT s.status, s.sqlstate, s.delay INTO answer, state, pause
        FROM emulator_script s WHERE s.attempt = this_attempt;
    IF NOT FOUND THEN
        answer := CASE WHEN refused_key IS NULL THEN 200 ELSE 400 END;
        state := '23514';
    END IF;
    PERFORM pg_sleep(pause);
    PERFORM dblink_exec((SELECT dsn FROM emulator_settings), format(
        'INSERT INTO emulator_log (attempt, operation, items, status) VALUES (%s, %L, %s, %s)',
        this_attempt, TG_OP, carried, answer));
    IF answer = 400 AND state = '23514' THEN
        RAISE EXCEPTION 'new row for relation "{TABLE}" violates check constraint '
            '"{TABLE}_accepted": member % is refused', refused_key
            USING ERRCODE = state;
    ELSIF answer >= 300 THEN
        RAISE EXCEPTION 'scripted failure (%)', answer USING ERRCODE = state;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER {TABLE}_inserted AFTER INSERT ON {TABLE} REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION emulator_watch();
CREATE TRIGGER {TABLE}_updated AFTER UPDATE ON {TABLE} REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION emulator_watch();
CREATE TRIGGER {TABLE}_deleted AFTER DELETE ON {TABLE} REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION emulator_watch();
"""


def sqlstate_for(status: int) -> str:
    """The SQLSTATE a server sends for the condition an HTTP status stands for."""
    if status == 429:
        return "55P03"
    if status in (408, 504):
        return "57014"
    if status >= 500:
        return "40001"
    if status in (401, 403):
        return "42501"
    return "22023"


def _blocking(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work` to completion on its own event loop, in a thread (the tests' loop is busy
    running the test that asks)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work()))
        except BaseException as exc:  # handed to the caller
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class _Refused(set[str]):
    """`reject` or `poison`: a set whose every change is written to `emulator_refused`."""

    def __init__(self, emulator: PostgresEmulator, kind: str) -> None:
        super().__init__()
        self._emulator, self._kind = emulator, kind

    def _store(self) -> None:
        self._emulator.execute("DELETE FROM emulator_refused WHERE kind = $1", self._kind)
        for key in self:
            self._emulator.execute(
                "INSERT INTO emulator_refused (key, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                key,
                self._kind,
            )

    def add(self, key: str) -> None:
        super().add(key)
        self._store()

    def update(self, *others: Iterable[str]) -> None:
        super().update(*others)
        self._store()

    def discard(self, key: str) -> None:
        super().discard(key)
        self._store()

    def remove(self, key: str) -> None:
        super().remove(key)
        self._store()

    def clear(self) -> None:
        super().clear()
        self._store()


class _Script(deque[Scripted]):
    """`script`: each answer is bound to the next write transaction not yet bound, in
    `emulator_script`; the ones whose transaction has not come yet are still pending."""

    def __init__(self, emulator: PostgresEmulator) -> None:
        super().__init__()
        self._emulator = emulator
        self._bound: list[tuple[int, Scripted]] = []

    def append(self, answer: Scripted) -> None:
        after = max([self._emulator.attempts(), *(n for n, _ in self._bound)])
        self._emulator.execute(
            "INSERT INTO emulator_script (attempt, status, sqlstate, delay) "
            "VALUES ($1, $2, $3, $4)",
            after + 1,
            answer.status,
            sqlstate_for(answer.status),
            answer.delay,
        )
        self._bound.append((after + 1, answer))

    def extend(self, answers: Iterable[Scripted]) -> None:
        for answer in answers:
            self.append(answer)

    def _pending(self) -> list[Scripted]:
        done = self._emulator.attempts()
        return [answer for number, answer in self._bound if number > done]

    def __len__(self) -> int:
        return len(self._pending())

    def __bool__(self) -> bool:
        return bool(self._pending())

    def __iter__(self) -> Iterator[Scripted]:
        return iter(self._pending())

    def clear(self) -> None:
        done = self._emulator.attempts()
        self._emulator.execute("DELETE FROM emulator_script WHERE attempt > $1", done)
        self._bound = [(n, a) for n, a in self._bound if n <= done]


@dataclass
class PostgresEmulator(EmulatorBase):
    admin_url: str = POSTGRES_ADMIN_URL
    database: str = field(default_factory=lambda: unique_name("signalsmith_dest"))

    def __post_init__(self) -> None:
        require_reachable("PostgreSQL", self.admin_url)
        self.script = _Script(self)
        self.reject = _Refused(self, "reject")
        self.poison = _Refused(self, "poison")
        parts = urlsplit(self.admin_url)
        self.user = parts.username or "postgres"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432
        dsn = f"host={self.host} port={self.port} dbname={self.database} user={self.user}"
        if parts.password:
            dsn += f" password={parts.password}"

        async def create() -> None:
            admin = await asyncpg.connect(self.admin_url)
            try:
                await admin.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await admin.close()
            connection = await asyncpg.connect(self.url)
            try:
                await connection.execute(SCHEMA)
                await connection.execute("INSERT INTO emulator_settings VALUES ($1)", dsn)
            finally:
                await connection.close()

        _blocking(create)

    @property
    def url(self) -> str:
        """The database's URL, with the test server's credentials."""
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{self.database}"))

    def app(self) -> Starlette:
        """Nothing is served over HTTP: the connector talks to the database at `url`."""
        return Starlette()

    def members(self) -> dict[str, dict[str, Any]]:
        rows = self.fetch(f"SELECT * FROM {TABLE}")
        return {str(row[KEY]): dict(row) for row in rows}

    @property  # type: ignore[override]
    def log(self) -> list[RequestLog]:
        """One entry per write transaction (its statements' rows together), in order."""
        rows = self.fetch(
            "SELECT attempt, string_agg(DISTINCT operation, '+') AS operation, "
            "sum(items)::int AS items, max(status) AS status "
            "FROM emulator_log GROUP BY attempt ORDER BY attempt"
        )
        return [RequestLog(r["operation"], TABLE, r["items"], r["status"]) for r in rows]

    @log.setter
    def log(self, value: list[RequestLog]) -> None:
        if value:
            raise AttributeError("the database keeps the postgres emulator's log")

    def attempts(self) -> int:
        """Write transactions so far (the sequence, which no rollback undoes)."""
        rows = self.fetch("SELECT last_value, is_called FROM emulator_attempts")
        return int(rows[0]["last_value"]) if rows[0]["is_called"] else 0

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def work() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(self.url)
            try:
                return list(await connection.fetch(sql, *args))
            finally:
                await connection.close()

        return _blocking(work)

    def execute(self, sql: str, *args: Any) -> None:
        async def work() -> None:
            connection = await asyncpg.connect(self.url)
            try:
                await connection.execute(sql, *args)
            finally:
                await connection.close()

        _blocking(work)

    def close(self) -> None:
        async def drop() -> None:
            admin = await asyncpg.connect(self.admin_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await admin.close()

        _blocking(drop)
