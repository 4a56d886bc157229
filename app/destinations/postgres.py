"""PostgreSQL: the audience kept as rows of a table you name, one row per member.

Each batch is one transaction. Adds and updates are one `INSERT … SELECT … FROM
jsonb_populate_recordset(NULL::<table>, $1) ON CONFLICT (<key_column>) DO UPDATE SET …` of the
mapped columns; exits are one `DELETE … WHERE <key_column> IN (SELECT … FROM
jsonb_populate_recordset(…))`. The rows travel as a single JSON parameter that PostgreSQL
turns into the table's own row type, so every value reaches its column through that column's
type (a member key `"42"` into a `bigint` key, text into `numeric`, `timestamptz`, `jsonb`
…), a batch of any size is one bound parameter (far from asyncpg's 32 767), and nothing the
user wrote is ever spliced into SQL except identifiers, quoted by SQLAlchemy.

`check()` connects, resolves the table (`to_regclass`, so an unqualified name follows the
search path), and verifies that `key_column` exists and is the whole of a primary key or
unique constraint (what `ON CONFLICT` needs) and that the role may insert and update. The
mapped destination fields must be columns of the table: a sync cannot be checked against the
table when it is created (no connection then), so a batch naming another column is refused
whole with the columns the table has. A refused row (a constraint, a bad value) refuses its
transaction; delivery bisects the batch until it is isolated.

Errors are classified by SQLSTATE: serialization failures, deadlocks, lock timeouts, shutdowns,
exhausted resources and lost connections are transient; refused credentials (28xxx), missing
privileges (42501) and a missing database deny access (the run stops); the rest refuse the
batch. Messages carry the server's words with the URL and password removed. The server's host
passes the private-address guard (resolved and checked before connecting).

Docs: https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
https://www.postgresql.org/docs/current/functions-json.html (jsonb_populate_recordset)
https://www.postgresql.org/docs/current/errcodes-appendix.html
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import asyncpg
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.destinations.address_guard import AddressPolicy, check_host
from app.destinations.base import (
    AccessDenied,
    Batch,
    BatchResult,
    DestinationError,
    Operation,
    TerminalError,
    TransientError,
)
from app.destinations.config import secret_field, validated
from app.destinations.spec import BuildOptions, DestinationSpec
from app.sources.source_connection import sanitised_message
from models.enums import DestinationType, OnExit

MAX_ROWS = 10_000
CONNECT_TIMEOUT = 10.0
#: `ssl` values asyncpg understands; no other URL query parameter is accepted.
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
#: SQLSTATE classes and codes a retry may cure.
TRANSIENT_CLASSES = ("08", "53", "57P")
TRANSIENT_CODES = frozenset({"40001", "40P01", "55P03", "57014"})
#: Credentials refused (28…), privileges missing, database missing: no batch can succeed.
DENIED_CLASSES = ("28",)
DENIED_CODES = frozenset({"42501", "3D000"})
_DIALECT = postgresql.dialect()


def destination_url(raw: str) -> URL:
    """The database URL, checked: postgresql://, one host, a database, only `ssl` in the
    query. Messages never repeat the URL (it holds the password)."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ValueError("not a valid postgresql:// URL") from None
    if url.get_backend_name() != "postgresql":
        raise ValueError("must be a postgresql:// URL")
    if not url.host or "," in url.host:
        raise ValueError("must name one database host")
    if not url.database:
        raise ValueError("must name the database")
    unknown = set(url.query) - {"ssl"}
    if unknown:
        raise ValueError(f"unsupported URL parameter(s): {', '.join(sorted(unknown))}")
    if "ssl" in url.query and url.query["ssl"] not in SSL_MODES:
        raise ValueError(f"ssl must be one of {', '.join(sorted(SSL_MODES))}")
    return url.set(drivername="postgresql+asyncpg")


def table_parts(table: str) -> tuple[str | None, str]:
    """(schema, name) of `name` or `schema.name`."""
    schema, dot, name = table.partition(".")
    return (schema, name) if dot else (None, schema)


class PostgresConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = secret_field(
        min_length=1,
        max_length=2000,
        description="postgresql://user:password@host:5432/database (optionally ?ssl=require)",
    )
    table: str = Field(
        min_length=1,
        max_length=127,
        description="The table, optionally schema-qualified (schema.table), named as "
        "PostgreSQL stores it (case-sensitive, without quotes)",
    )
    key_column: str = Field(
        min_length=1,
        max_length=63,
        description="The column holding the member key: the table's primary key or a unique column",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        destination_url(value)
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        schema, name = table_parts(value)
        if not name or schema == "" or "." in name or len(name) > 63 or "\x00" in value:
            raise ValueError("must be table or schema.table (each at most 63 characters)")
        return value

    @field_validator("key_column")
    @classmethod
    def _column(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


@dataclass(frozen=True)
class TableShape:
    """The resolved table: where it lives and which columns it has."""

    schema: str
    name: str
    columns: tuple[str, ...]
    generated: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    def clause(self, *columns: str) -> sa.TableClause:
        return sa.table(self.name, *(sa.column(c) for c in columns), schema=self.schema)

    def row_type(self) -> sa.ColumnElement[Any]:
        """`NULL::<table>`: the table's row type, the template rows are read into."""
        quoted = _DIALECT.identifier_preparer.format_table(self.clause())
        return sa.literal_column(f"NULL::{quoted}")


def json_value(value: Any) -> Any:
    """A value as JSON, in the text form PostgreSQL's input functions read."""
    if isinstance(value, Decimal | UUID) or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return value


class PostgresConnector:
    type: ClassVar[str] = "postgres"
    max_batch_size: ClassVar[int] = MAX_ROWS
    default_batch_size: ClassVar[int] = 1_000

    def __init__(
        self,
        config: dict[str, Any],
        options: BuildOptions,
        *,
        lock_timeout: float = 30.0,
        statement_timeout: float = 300.0,
    ) -> None:
        settings = validated(PostgresConfig, config, "postgres")
        self._url = destination_url(settings.url)
        self._table = settings.table
        self._key = settings.key_column
        self._policy: AddressPolicy = options.policy
        self._settings = {
            "application_name": "signalsmith",
            "lock_timeout": str(int(lock_timeout * 1000)),
            "statement_timeout": str(int(statement_timeout * 1000)),
        }
        self._engine: AsyncEngine | None = None
        self._shape: TableShape | None = None
        #: A table that cannot take the sync stays refused for this connector's lifetime.
        self._unusable: TerminalError | None = None

    async def check(self) -> None:
        """Connects, resolves the table and its key column (and the role's rights on it)."""
        await self._resolved()

    async def send(self, batch: Batch) -> BatchResult:
        shape = await self._resolved()
        keys = [record.key for record in batch.records]
        if batch.operation is Operation.remove:
            statement: sa.Executable = self._delete(shape)
            rows: list[dict[str, Any]] = [{self._key: key} for key in keys]
        else:
            columns = self._columns(shape, batch)
            statement = self._upsert(shape, columns)
            rows = [
                {
                    **{c: json_value(record.fields.get(c)) for c in columns if c != self._key},
                    self._key: record.key,
                }
                for record in batch.records
            ]
        document = json.dumps(rows, separators=(",", ":"), default=str)
        async with self._database():
            async with self._engine_for().begin() as connection:
                await connection.execute(statement, {"rows": document})
        return BatchResult(accepted=tuple(keys))

    def _columns(self, shape: TableShape, batch: Batch) -> list[str]:
        """The mapped columns (and the key), each a writable column of the table."""
        named = dict.fromkeys(name for record in batch.records for name in record.fields)
        named.pop(self._key, None)
        unknown = [name for name in named if name not in shape.columns]
        if unknown:
            raise TerminalError(
                f"table {shape.label} has no column {', '.join(map(repr, unknown))} "
                f"(its columns: {', '.join(shape.columns)})"
            )
        generated = [name for name in named if name in shape.generated]
        if generated:
            raise TerminalError(
                f"column {', '.join(map(repr, generated))} of {shape.label} is generated: "
                "it cannot be written"
            )
        return [self._key, *named]

    def _incoming(self, shape: TableShape, columns: list[str]) -> sa.TableValuedAlias:
        document = sa.cast(sa.bindparam("rows", type_=sa.Text), JSONB)
        rows = sa.func.jsonb_populate_recordset(shape.row_type(), document)
        return rows.table_valued(*(sa.column(c) for c in columns)).alias("incoming")

    def _upsert(self, shape: TableShape, columns: list[str]) -> sa.Executable:
        incoming = self._incoming(shape, columns)
        insert = postgresql.insert(shape.clause(*columns)).from_select(
            columns, sa.select(*(incoming.c[c] for c in columns))
        )
        others = [c for c in columns if c != self._key]
        if not others:
            return insert.on_conflict_do_nothing(index_elements=[self._key])
        return insert.on_conflict_do_update(
            index_elements=[self._key], set_={c: insert.excluded[c] for c in others}
        )

    def _delete(self, shape: TableShape) -> sa.Executable:
        table = shape.clause(self._key)
        incoming = self._incoming(shape, [self._key])
        return sa.delete(table).where(table.c[self._key].in_(sa.select(incoming.c[self._key])))

    # --- the table --------------------------------------------------------------------------

    async def _resolved(self) -> TableShape:
        if self._unusable is not None:
            raise self._unusable
        if self._shape is None:
            async with self._database():
                async with self._engine_for().connect() as connection:
                    try:
                        self._shape = await self._inspect(connection)
                    except TerminalError as exc:
                        self._unusable = exc
                        raise
        return self._shape

    async def _inspect(self, connection: AsyncConnection) -> TableShape:
        schema, name = table_parts(self._table)
        preparer = _DIALECT.identifier_preparer
        quoted = ".".join(preparer.quote_identifier(p) for p in (schema, name) if p is not None)
        found = (
            await connection.execute(
                sa.text(
                    "SELECT c.oid, n.nspname, c.relname, c.relkind::text FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.oid = to_regclass(:name)"
                ),
                {"name": quoted},
            )
        ).first()
        if found is None:
            raise TerminalError(
                f"no table {self._table!r} in the database (or the role cannot see it)"
            )
        oid, shape_schema, shape_name, kind = found
        if kind not in ("r", "p"):
            raise TerminalError(f"{self._table!r} is not a table")
        attributes = (
            await connection.execute(
                sa.text(
                    "SELECT attname, attnum, attgenerated <> '' FROM pg_attribute "
                    "WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                ),
                {"oid": oid},
            )
        ).all()
        columns = tuple(str(row[0]) for row in attributes)
        shape = TableShape(
            shape_schema,
            shape_name,
            columns,
            frozenset(str(row[0]) for row in attributes if row[2]),
        )
        number = next((int(row[1]) for row in attributes if row[0] == self._key), None)
        if number is None:
            raise TerminalError(
                f"table {shape.label} has no column {self._key!r} "
                f"(its columns: {', '.join(columns)})"
            )
        unique = await connection.scalar(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = :oid AND indisunique "
                "AND indimmediate AND indpred IS NULL AND indexprs IS NULL "
                "AND indnkeyatts = 1 AND indkey[0] = :number)"
            ),
            {"oid": oid, "number": number},
        )
        if not unique:
            raise TerminalError(
                f"column {self._key!r} of {shape.label} is neither the primary key nor unique "
                "on its own (ON CONFLICT needs one)"
            )
        rights = (
            await connection.execute(
                sa.text(
                    "SELECT has_table_privilege(CAST(:oid AS oid), 'INSERT'), "
                    "has_table_privilege(CAST(:oid AS oid), 'UPDATE')"
                ),
                {"oid": oid},
            )
        ).one()
        if not all(rights):
            raise AccessDenied(f"postgres: the role may not insert into and update {shape.label}")
        return shape

    # --- connections and errors -------------------------------------------------------------

    def _engine_for(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(
                self._url,
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT, "server_settings": self._settings},
            )
        return self._engine

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[None]:
        """Checks the host before connecting; a database failure inside becomes the matching
        destination error."""
        await check_host(self._url.host or "", self._url.port or 5432, self._policy)
        try:
            yield
        except DestinationError:
            raise
        except (DBAPIError, asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> DestinationError:
        """The destination error a database failure is (its message without secrets)."""
        if isinstance(exc, TimeoutError):
            return TransientError("postgres timed out")
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        state = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "")
        message = sanitised_message(exc, self._url)
        if state in TRANSIENT_CODES or state.startswith(TRANSIENT_CLASSES):
            return TransientError(f"postgres failed, retry may help ({state}): {message}")
        if state in DENIED_CODES or state.startswith(DENIED_CLASSES):
            return AccessDenied(f"postgres refused the credentials or access ({state}): {message}")
        if not state and isinstance(exc, OSError | ConnectionError):
            return TransientError(f"postgres could not be reached ({type(exc).__name__})")
        return TerminalError(f"postgres refused the batch ({state or 'error'}): {message}")

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


SPEC = DestinationSpec(
    kind=DestinationType.postgres,
    title="PostgreSQL table",
    description="Members upserted as rows of a table you name (keyed by a primary key or "
    "unique column), one transaction per batch; exits delete their rows.",
    config=PostgresConfig,
    build=lambda config, options: PostgresConnector(config, options),
    max_batch_size=PostgresConnector.max_batch_size,
    default_batch_size=PostgresConnector.default_batch_size,
    fields=(),
    custom_fields=True,
    needs_identifier=False,
    rate_limit=None,
    on_exit=frozenset({OnExit.remove}),
    account_fields=(),
)
