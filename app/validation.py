"""Turning a raw request object into a validated shape, with errors that name the field.

Both transports hand their raw input here, so a rule about input is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import BadRequest, FieldError, InvalidInput

ShapeT = TypeVar("ShapeT", bound=BaseModel)


def parse_input(
    shape: type[ShapeT],
    data: object,
    *,
    read_only: Iterable[str] = (),
    nullable: Iterable[str] = (),
) -> ShapeT:
    """Validate `data` against `shape`.

    400 for a non-object body, read-only or unknown top-level fields; 422 for bad values
    (including an explicit null for a field that may not be null).
    """
    if not isinstance(data, Mapping):
        raise BadRequest(
            "the body must be a JSON object", [FieldError("body", "expected an object")]
        )
    forbidden = sorted(set(data) & set(read_only))
    if forbidden:
        raise BadRequest(
            f"read-only field(s) cannot be set: {', '.join(forbidden)}",
            [FieldError(name, "read-only field") for name in forbidden],
        )
    unknown = sorted(str(key) for key in data if key not in shape.model_fields)
    if unknown:
        raise BadRequest(
            f"unknown field(s): {', '.join(unknown)}",
            [FieldError(name, "unknown field") for name in unknown],
        )
    nulls = sorted(key for key, value in data.items() if value is None and key not in set(nullable))
    if nulls:
        raise InvalidInput(
            f"field(s) may not be null: {', '.join(nulls)}",
            [FieldError(name, "may not be null") for name in nulls],
        )
    with_nul = _fields_with_nul(data)
    if with_nul:
        raise InvalidInput(
            f"text may not contain NUL characters: {', '.join(with_nul)}",
            [FieldError(name, "may not contain NUL (\\u0000) characters") for name in with_nul],
        )
    try:
        return shape.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid_from(exc) from None


def _fields_with_nul(data: Mapping[str, Any]) -> list[str]:
    """Paths of strings (keys included) holding U+0000, which PostgreSQL text cannot store."""
    found: list[str] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            found.append(_field_path(loc))
        elif isinstance(value, Mapping):
            for key, child in value.items():
                if isinstance(key, str) and "\x00" in key:
                    found.append(_field_path((*loc, key)))
                stack.append(((*loc, key), child))
        elif isinstance(value, list | tuple):
            stack.extend(((*loc, index), child) for index, child in enumerate(value))
    return sorted(set(found))


def invalid_from(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A 422 listing every failed field (under `prefix` for a nested object)."""
    details = [
        FieldError(_field_path((prefix, *err["loc"]) if prefix else err["loc"]), _message(err))
        for err in exc.errors()
    ]
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:5])
    return InvalidInput(summary, details)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "body"


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")
