"""The membership stream's fast path on PostgreSQL: the audience query through
`COPY (…) TO STDOUT`, its text read back column by column (`copy_text`).

Through a cursor, asyncpg decoding every value in its binary codecs costs about 2.5 times the
CPU the server spends producing the rows; COPY's text, split and converted by C built-ins,
becomes the same members for about 1.3 times. Three things differ from a cursor and are
handled here:

- COPY takes no parameters, so `inline_statement` writes each bound value into the SQL as an
  escape-string literal cast to the type the cursor's `$n::TYPE` names (the same statement,
  the same plan). Every backslash and every quote of the value is doubled, so the literal
  ends at the closing quote written here and nowhere else, whatever the session's
  `standard_conforming_strings`; the client encoding is asyncpg's UTF-8, in which no
  multi-byte character holds a quote or backslash byte. Only values of a few plain Python
  types are inlined; anything else (a NUL, a lone surrogate, a naive datetime, another type)
  makes it return None, and the caller binds them on a cursor instead.
- The server pushes: `CopyPipe` holds what came and the stream has not read, up to a limit;
  beyond it the COPY's output callable waits, asyncpg stops reading the socket, and the server
  stops sending. Memory stays bounded whatever the consumer's pace.
- A COPY is one statement for as long as the consumer takes, so the server's statement timeout
  cannot bound it (a slow sync would hit it). The caller switches it off for the COPY and
  bounds instead each wait for the server's next rows (`CopyPipe.read`), which is what the
  timeout bounds on a cursor: each FETCH.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from app.sources.copy_text import CopyColumns, CopyTextReader
from app.sources.source_connection import ColumnBatch

#: Bytes received and not yet read by the stream beyond which the COPY waits.
PIPE_LIMIT = 1 << 20


_UNSET: Any = object()


class _NotInlinable(Exception):
    pass


def inline_statement(statement: ClauseElement, dialect: Dialect) -> str | None:
    """`statement` for PostgreSQL with its bound values written in as literals, or None when
    a value is not one this function writes (the caller then binds it on a cursor)."""
    try:
        compiler = _InliningCompiler(dialect, statement, compile_kwargs={"literal_binds": True})
    except (_NotInlinable, CompileError):
        return None
    return compiler.string


def quoted_literal(text: str) -> str:
    """`text` as a PostgreSQL escape-string constant. With every backslash doubled and every
    quote doubled, the constant ends only at the closing quote written here, and means `text`
    whether or not the session has `standard_conforming_strings`."""
    if "\x00" in text:
        raise _NotInlinable("PostgreSQL text cannot hold NUL")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _NotInlinable("not encodable as UTF-8") from None
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def literal_text(value: object, python_type: type | None) -> str | None:
    """The text PostgreSQL reads back as `value` bound with a type whose Python type is
    `python_type` (None for NULL)."""
    if value is None:
        return None
    if python_type is bool and type(value) is bool:
        return "true" if value else "false"
    if python_type is int and type(value) in (int, bool):
        return str(int(value))  # type: ignore[call-overload]
    if python_type is float and type(value) in (int, float, bool):
        return repr(float(value))  # type: ignore[arg-type]
    if python_type is str and type(value) is str:
        return value
    if python_type is datetime and type(value) is datetime and value.tzinfo is not None:
        return value.isoformat()
    if python_type is date and type(value) is date:
        return value.isoformat()
    raise _NotInlinable(f"{type(value).__name__} bound as {python_type}")


class _InliningCompiler(PGCompiler_asyncpg):
    """The asyncpg dialect's compiler, each bound value rendered where its `$n::TYPE` would be,
    as `E'…'::TYPE`: the same statement as the cursor's, the same types."""

    def render_literal_bindparam(
        self,
        bindparam: BindParameter[Any],
        render_literal_value: Any = _UNSET,
        bind_expression_template: str | None = None,
        **kw: Any,
    ) -> str:
        unusual = render_literal_value is not _UNSET or bind_expression_template is not None
        if unusual or bindparam.expanding or bindparam.callable is not None:
            raise _NotInlinable("a parameter rendered another way")
        value = bindparam.value
        bound: TypeEngine[Any] = bindparam.type
        impl = bound._unwrapped_dialect_impl(self.dialect)
        processor = bound.bind_processor(self.dialect)
        if processor is not None and value is not None:
            value = processor(value)  # a TypeDecorator's process_bind_param (identity here)
        try:
            python_type: type | None = impl.python_type
        except NotImplementedError:
            raise _NotInlinable(f"no Python type for {impl!r}") from None
        text = literal_text(value, python_type)
        literal = "NULL" if text is None else quoted_literal(text)
        return self.render_bind_cast(bound, impl, literal) if impl.render_bind_cast else literal


class CopyPipe:
    """What the COPY has received and the stream has not read yet.

    `write` is the COPY's output callable: it keeps the chunk and returns at once until
    `limit` bytes wait, then waits for the stream to read (asyncpg reads no more from the
    socket meanwhile). `read` takes everything waiting, at once, after waiting at most
    `patience` seconds for something to come (then TimeoutError).
    """

    def __init__(self, patience: float, limit: int = PIPE_LIMIT) -> None:
        self.patience = patience
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._finished = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    async def write(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        self._readable.set()
        if self._size >= self.limit:
            self._writable.clear()
            await self._writable.wait()

    def finish(self) -> None:
        """No more chunks will come (the COPY ended, well or not)."""
        self._finished = True
        self._readable.set()

    async def read(self) -> bytes | None:
        """The bytes waiting; None once the COPY has ended and everything was read."""
        while not self._chunks:
            if self._finished:
                return None
            self._readable.clear()
            async with asyncio.timeout(self.patience):
                await self._readable.wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self._writable.set()
        return data


async def copy_column_batches(
    pipe: CopyPipe,
    copying: asyncio.Future[Any],
    reader: CopyTextReader,
    *,
    batch_size: int,
    unreadable: Callable[[Exception], Exception],
) -> AsyncGenerator[ColumnBatch]:
    """Batches of at most `batch_size` rows from what `copying` (the COPY, writing into
    `pipe`) sends, each column decoded when read (a value that does not read raises what
    `unreadable` makes of the error). Raises what the COPY raised; the caller stops it on
    leaving."""
    while (data := await pipe.read()) is not None:
        texts, escaped, lines = reader.feed_lines(data)
        for start in range(0, len(lines), batch_size):
            stop = min(start + batch_size, len(lines))
            yield ColumnBatch(
                CopyColumns(reader, texts, escaped, (start, stop), unreadable),
                reader.integer_texts(texts, escaped, start, stop),
                lines[start:stop],
                reader.layout,
            )
            # Let the event loop read what the server sent meanwhile: a socket left unread
            # fills, and the server waits instead of working alongside this process.
            await asyncio.sleep(0)
    await copying  # its error, if it failed
    reader.finish()
