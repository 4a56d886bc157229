"""Scalars and ids: UUIDs travel as `ID`, datetimes as UTC ISO 8601 with a `Z`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

from app.errors import InvalidInput


def serialize_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: object) -> datetime:
    """An ISO 8601 string with an offset (`Z` or `±hh:mm`); a local time is ambiguous."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; add 'Z' or '+hh:mm'")
    return parsed.astimezone(UTC)


DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description="A UTC instant in ISO 8601, e.g. 2024-05-01T12:00:00Z.",
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

#: Replaces Strawberry's default scalars in the schema config.
SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME}


def to_id(value: uuid.UUID) -> strawberry.ID:
    return strawberry.ID(str(value))


def to_optional_id(value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else to_id(value)


def parse_id(value: str, argument: str) -> uuid.UUID:
    """The UUID behind an `ID` argument; anything else is bad input naming the argument."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput.field(argument, f"{value!r} is not a valid id") from None
