"""One transport-neutral error hierarchy: REST and GraphQL each map it in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class AppError(Exception):
    """A failure the caller caused or must know about; never an internal bug."""

    code: ClassVar[str] = "error"
    graphql_code: ClassVar[str] = "BAD_USER_INPUT"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class Unauthenticated(AppError):
    code = "unauthenticated"
    graphql_code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(AppError):
    code = "forbidden"
    graphql_code = "FORBIDDEN"
    http_status = 403


class NotFound(AppError):
    code = "not_found"
    graphql_code = "NOT_FOUND"
    http_status = 404

    @classmethod
    def of(cls, kind: str, object_id: object) -> NotFound:
        return cls(f"{kind} {object_id} not found", [FieldError("id", f"no {kind} {object_id}")])


class BadRequest(AppError):
    """Malformed request: bad JSON, a non-object body, unknown or read-only fields."""

    code = "bad_request"
    http_status = 400


class InvalidInput(AppError):
    """Well-formed request whose values are invalid."""

    code = "validation_error"
    http_status = 422

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Conflict(AppError):
    code = "conflict"
    graphql_code = "CONFLICT"
    http_status = 409
