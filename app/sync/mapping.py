"""From a source row to the payload a destination receives, and that payload's fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def map_row(row: Mapping[str, Any], field_mapping: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The destination fields of one member, in mapping order."""
    return {item["destination_field"]: row.get(item["source_column"]) for item in field_mapping}


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
