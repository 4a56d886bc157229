"""From a source row to the payload a destination receives, and that payload's fingerprint.

The engine fingerprints a batch at a time (`fingerprints`, `row_fingerprints`): the same
canonical JSON text as `fingerprint`, byte for byte, so fingerprints held from any earlier
run still compare equal; only the way the text is built differs. It is built field by field
down the batch: each field's values are encoded in one pass (`encode_basestring_ascii` over a
column of text, `str` over a column of integers, the JSON encoder itself for anything else),
then each member's text is one `%` of a template naming the fields in sorted order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
_NULL = "null"
_TEXT = frozenset({str})
_TEXT_OR_NULL = frozenset({str, type(None)})
_INTEGER_OR_NULL = frozenset({int, type(None)})


def map_row(row: Mapping[str, Any], field_mapping: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The destination fields of one member, in mapping order."""
    return {item["destination_field"]: row.get(item["source_column"]) for item in field_mapping}


def row_mapper(
    field_mapping: Sequence[Mapping[str, str]],
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """`map_row` bound to one mapping."""
    pairs = [(item["destination_field"], item["source_column"]) for item in field_mapping]

    def mapped(row: Mapping[str, Any]) -> dict[str, Any]:
        return {field: row.get(column) for field, column in pairs}

    return mapped


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fingerprint(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the payload: equal payloads, equal fingerprints,
    whatever the key order or the numeric type the source returned."""
    canonical = {key: _canonical(value) for key, value in payload.items()}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprints(payloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """`fingerprint` of each payload."""
    if not payloads:
        return []
    fields = payloads[0].keys()
    if not all(type(p) is dict and p.keys() == fields for p in payloads):
        return [fingerprint(payload) for payload in payloads]
    names = sorted(fields)
    return _digests(names, [[p[name] for p in payloads] for name in names], len(payloads))


def row_fingerprints(
    rows: Sequence[Mapping[str, Any]], field_mapping: Sequence[Mapping[str, str]]
) -> list[str]:
    """`fingerprint(map_row(row, field_mapping))` of each row, without building the payloads
    (a run needs them only for the members it sends)."""
    if not rows:
        return []
    columns = {item["destination_field"]: item["source_column"] for item in field_mapping}
    names = sorted(columns)
    return _digests(names, [[row.get(columns[name]) for row in rows] for name in names], len(rows))


def _digests(names: list[str], columns: list[list[Any]], count: int) -> list[str]:
    """The fingerprints of the members whose sorted fields `names` hold `columns`."""
    template = (
        "{" + ",".join(encode_basestring_ascii(n).replace("%", "%%") + ":%s" for n in names) + "}"
    )
    encoded = [_encoded(column) for column in columns]
    if encoded:
        texts = [template % values for values in zip(*encoded, strict=True)]
    else:
        texts = [template] * count
    # ASCII JSON holds no raw newline: one encode, then split, gives each member's bytes.
    lines = "\n".join(texts).encode().split(b"\n")
    return [digest.hexdigest() for digest in map(hashlib.sha256, lines)]


def _encoded(values: list[Any]) -> list[str]:
    """Each value as the canonical JSON encoder writes it inside a payload."""
    kinds = set(map(type, values))
    if kinds <= _TEXT:
        return list(map(encode_basestring_ascii, values))
    if kinds <= _TEXT_OR_NULL:
        return [_NULL if v is None else encode_basestring_ascii(v) for v in values]
    if kinds <= _INTEGER_OR_NULL:
        return [_NULL if v is None else str(v) for v in values]
    return [_ENCODER.encode(_canonical(v)) for v in values]
