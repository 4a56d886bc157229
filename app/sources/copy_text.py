"""PostgreSQL's `COPY … TO STDOUT` text format read back into the very values asyncpg's binary
codecs give for the same rows (the membership stream's fast path, `postgres_copy`).

The text is read a column at a time with C-speed built-ins (`str.split`, `map(int, …)`,
`Decimal`, `datetime.fromisoformat`), never a Python step per value on the common path. A row
is one line, its values separated by tabs; a tab, newline or backslash inside a value comes
escaped (`\\t`, `\\n`, `\\\\`) and NULL is `\\N`, so splitting on tabs and newlines is exact and
only a text that holds a backslash needs a second look. The session must print timestamps in
UTC, dates in ISO style and floats exactly (the connection checks; `postgres_connection`).

Each type in `DECODERS` decodes to what asyncpg returns, down to the exponent of a `Decimal`
(asyncpg drops the trailing zero groups of a whole `numeric`: `1.00E+6`, not `1000000`) and
the `datetime.max` it gives for `infinity`. A result with a column of any other type is read
some other way.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, overload

from asyncpg.pgproto.pgproto import UUID

NULL = "\\N"
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_BOOLEANS = {"t": True, "f": False}
_SPECIAL_DATES = {"infinity": date.max, "-infinity": date.min}
_SPECIAL_TIMES = {"infinity": datetime.max, "-infinity": datetime.min}


class CopyFormatError(ValueError):
    """COPY sent something that does not read as the expected columns."""


@dataclass(frozen=True)
class ColumnDecoder:
    """One column's texts to values: `many` for a whole column of non-NULL texts (it may
    raise ValueError on an unusual value), `one` for a single text, unusual or not, and
    `filler` a valid text standing in for NULLs while `many` runs."""

    many: Callable[[list[str]], list[Any]]
    one: Callable[[str], Any]
    filler: str
    escapes: bool = False  #: a textual type, whose values may hold escapes (`one` unescapes)

    def decode(self, texts: list[str], escaped: bool) -> list[Any]:
        """The values of `texts`; `escaped` when the chunk they come from holds a backslash
        (a NULL, or an escape in a text)."""
        if not escaped:
            return self._many(texts)
        nulls = texts.count(NULL)  # each holds one backslash: more are escapes
        if self.escapes and "\t".join(texts).count("\\") > nulls:
            one = self.one
            return [None if text == NULL else one(text) for text in texts]
        if not nulls:
            return self._many(texts)
        places, start = [], 0
        for _ in range(nulls):
            start = texts.index(NULL, start) + 1
            places.append(start - 1)
        filled = texts.copy()
        for place in places:
            filled[place] = self.filler
        values = self._many(filled)
        for place in places:
            values[place] = None
        return values

    def _many(self, texts: list[str]) -> list[Any]:
        try:
            return self.many(texts)
        except ValueError:  # an infinity, or a value to report
            return list(map(self.one, texts))


def unescape(text: str) -> str:
    """A text value as COPY's text format escapes it, unescaped."""
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda match: _ESCAPES.get(match[1], match[1]), text)


def _numeric(text: str) -> Decimal:
    """asyncpg's `Decimal` for a `numeric` text: a whole number without its trailing groups
    of four zeros (base-10000 digits), which the binary format does not send."""
    if "." in text or not text.endswith("0000"):
        return Decimal(text)
    zeros = (len(text) - len(text.rstrip("0"))) // 4 * 4
    return Decimal(f"{text[:-zeros]}E+{zeros}")


def _numerics(texts: list[str]) -> list[Decimal]:
    values = list(map(Decimal, texts))
    if "0000\t" in "\t".join(texts) + "\t":  # a whole number may need its exponent
        values = list(map(_numeric, texts))
    return values


def _float4s(texts: list[str]) -> list[float]:
    return array("f", map(float, texts)).tolist()


def _float4(text: str) -> float:
    return array("f", [float(text)])[0]


def _date(text: str) -> date:
    return _SPECIAL_DATES.get(text) or date.fromisoformat(text)


def _timestamp(text: str) -> datetime:
    return _SPECIAL_TIMES.get(text) or datetime.fromisoformat(text)


def _boolean(text: str) -> bool:
    return _BOOLEANS[text]


def _booleans(texts: list[str]) -> list[bool]:
    return list(map(_BOOLEANS.__getitem__, texts))


def _json(text: str) -> Any:
    return json.loads(unescape(text))


def _mapped(convert: Callable[[str], Any]) -> Callable[[list[str]], list[Any]]:
    return lambda texts: list(map(convert, texts))


def _same(texts: list[str]) -> list[str]:
    return texts


TEXT = ColumnDecoder(_same, unescape, "", escapes=True)
INTEGER = ColumnDecoder(_mapped(int), int, "0")
#: json and jsonb as SQLAlchemy's asyncpg dialect sets them up: parsed with `json.loads`.
JSON = ColumnDecoder(_mapped(json.loads), _json, "null", escapes=True)
#: The decoder of each built-in type, by asyncpg's `Type.name` (in `pg_catalog`).
DECODERS: dict[str, ColumnDecoder] = {
    **dict.fromkeys(["text", "varchar", "bpchar", "name"], TEXT),
    **dict.fromkeys(["json", "jsonb"], JSON),
    **dict.fromkeys(["int2", "int4", "int8", "oid"], INTEGER),
    "numeric": ColumnDecoder(_numerics, _numeric, "0"),
    "float8": ColumnDecoder(_mapped(float), float, "0"),
    "float4": ColumnDecoder(_float4s, _float4, "0"),
    "bool": ColumnDecoder(_booleans, _boolean, "f"),
    "date": ColumnDecoder(_mapped(date.fromisoformat), _date, "2000-01-01"),
    "timestamp": ColumnDecoder(_mapped(datetime.fromisoformat), _timestamp, "2000-01-01"),
    "timestamptz": ColumnDecoder(_mapped(datetime.fromisoformat), _timestamp, "2000-01-01"),
    "uuid": ColumnDecoder(_mapped(UUID), UUID, "00000000-0000-0000-0000-000000000000"),
}


class CopyTextReader:
    """Rows of COPY text, chunk by chunk, as columns of values.

    `feed` takes the bytes that came (a row may be cut anywhere between two chunks: the
    unfinished end waits for the next one) and returns the values of its complete rows, one
    flat list of texts; `columns` decodes a slice of those rows.
    """

    def __init__(self, decoders: Sequence[ColumnDecoder], layout: str = "") -> None:
        self.decoders = list(decoders)
        self.width = len(self.decoders)
        #: What the text of a row means (the statement and its column types): two rows with
        #: the same text under the same layout are the same values.
        self.layout = layout
        self._rest = b""

    def feed(self, data: bytes) -> tuple[list[str], bool]:
        """The texts of the complete rows in `self`'s leftover and `data`, row after row, and
        whether they hold a backslash (a NULL or an escape)."""
        texts, escaped, _ = self.feed_lines(data)
        return texts, escaped

    def feed_lines(self, data: bytes) -> tuple[list[str], bool, list[bytes]]:
        """`feed`, and each complete row's line as it came (without its newline)."""
        if self._rest:
            data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if not cut:
            return [], False, []
        lines = data[: cut - 1].split(b"\n")
        text = data[:cut].decode()
        texts = text.replace("\n", "\t").split("\t")
        texts.pop()  # after the last newline
        if len(texts) != len(lines) * self.width:
            raise CopyFormatError(f"a row of COPY output does not have {self.width} values")
        return texts, "\\" in text, lines

    def columns(
        self, texts: list[str], escaped: bool, start: int, stop: int
    ) -> list[Sequence[Any]]:
        """The values of rows `start` to `stop` (exclusive) of `texts`, column by column."""
        width = self.width
        return [
            decoder.decode(texts[start * width + index : stop * width : width], escaped)
            for index, decoder in enumerate(self.decoders)
        ]

    def integer_texts(
        self, texts: list[str], escaped: bool, start: int, stop: int
    ) -> list[str] | None:
        """The texts of the first column of rows `start` to `stop` when it is an integer
        column without NULLs there (each is then `str` of its value), else None."""
        if self.decoders[0] is not INTEGER:
            return None
        first = texts[start * self.width : stop * self.width : self.width]
        return None if escaped and NULL in first else first

    def finish(self) -> None:
        """The COPY is over: nothing may be left unread."""
        if self._rest:
            raise CopyFormatError("the COPY output ends inside a row")


class CopyColumns(Sequence[Sequence[Any]]):
    """The columns of rows `start` to `stop` of a chunk's texts, each decoded when it is
    first read, or just some rows of every column (`rows_at`): a consumer that needs only a
    few of the rows decodes only those. A value that does not read raises what `unreadable`
    makes of the error (decoding happens wherever the consumer reads)."""

    def __init__(
        self,
        reader: CopyTextReader,
        texts: list[str],
        escaped: bool,
        span: tuple[int, int],
        unreadable: Callable[[Exception], Exception],
    ) -> None:
        self._reader, self._texts, self._escaped = reader, texts, escaped
        self._start, self._stop = span
        self._unreadable = unreadable
        self._decoded: dict[int, Sequence[Any]] = {}

    def __len__(self) -> int:
        return self._reader.width

    @overload
    def __getitem__(self, index: int) -> Sequence[Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Sequence[Any]]: ...
    def __getitem__(self, index: int | slice) -> Sequence[Any] | Sequence[Sequence[Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        column = self._decoded.get(index)
        if column is None:
            width, decoder = self._reader.width, self._reader.decoders[index]
            texts = self._texts[self._start * width + index : self._stop * width : width]
            column = self._decoded[index] = self._decode(decoder, texts)
        return column

    def rows_at(self, rows: Sequence[int]) -> list[Sequence[Any]]:
        """The values of the rows at positions `rows` (counted from `start`), column by
        column."""
        if not rows:
            return [[] for _ in range(len(self))]
        if len(rows) == self._stop - self._start and list(rows) == list(range(len(rows))):
            return list(self)  # every row: whole columns, sliced in C
        width, texts = self._reader.width, self._texts
        first = self._start + rows[0]
        if list(rows) == list(range(rows[0], rows[0] + len(rows))):  # a run of rows: sliced
            end = (first + len(rows)) * width
            return [
                self._decode(decoder, texts[first * width + index : end : width])
                for index, decoder in enumerate(self._reader.decoders)
            ]
        columns: list[Sequence[Any]] = []
        for index, decoder in enumerate(self._reader.decoders):
            picked = [texts[(self._start + row) * width + index] for row in rows]
            columns.append(self._decode(decoder, picked))
        return columns

    def _decode(self, decoder: ColumnDecoder, texts: list[str]) -> list[Any]:
        try:
            return decoder.decode(texts, self._escaped)
        except (ValueError, ArithmeticError) as exc:
            raise self._unreadable(exc) from None
