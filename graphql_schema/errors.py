"""How errors reach clients: `extensions.code` on every error, unexpected ones masked.

- An AppError from a service: its `graphql_code` and `details` [{field, message}] (field
  names as the services name them, the same as in REST).
- A document that does not parse (or has too many tokens): GRAPHQL_PARSE_FAILED; one that
  does not validate (unknown field, too deep, too many aliases, introspection when off):
  GRAPHQL_VALIDATION_FAILED; variables that do not fit their types: BAD_USER_INPUT.
- Anything else raised in a resolver is a bug: logged with its traceback by the schema and
  answered as "Unexpected error." with INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult

from app.errors import AppError

INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"


def is_unexpected(error: GraphQLError) -> bool:
    """Raised while resolving a field, and not an error we meant to show."""
    return error.path is not None and not isinstance(error.original_error, AppError | GraphQLError)


class MaskUnexpectedErrors(MaskErrors):
    #: Its per-result hook only masks errors: a result without any passes unchanged.
    passes_plain_results = True

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """A plain subscription result without errors (nearly all of them) needs no masking;
        skip strawberry's runtime Protocol check, which costs on every event and socket."""
        if type(result) is ExecutionResult and not result.errors:
            self._stream_result_processed = True
            yield None
            return
        yield from super().on_stream_result(result)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked


class ErrorCodes(SchemaExtension):
    """Sets `extensions.code` (and `details`) on every error of the result."""

    def on_parse(self) -> Iterator[None]:
        yield
        self._mark_pre_execution(PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        yield
        self._mark_pre_execution(VALIDATION_FAILED)

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors if result is not None else None) or ():
            present(error)

    def _mark_pre_execution(self, code: str) -> None:
        for error in self.execution_context.pre_execution_errors or ():
            extensions_of(error).setdefault("code", code)


def extensions_of(error: GraphQLError) -> dict[str, Any]:
    if error.extensions is None:
        error.extensions = {}
    return error.extensions


def present(error: GraphQLError) -> None:
    extensions = extensions_of(error)
    if "code" in extensions:
        return
    original = error.original_error
    if isinstance(original, AppError):
        extensions["code"] = original.graphql_code
        extensions["details"] = [
            {"field": detail.field, "message": detail.message} for detail in original.details
        ]
    elif is_unexpected(error):
        extensions["code"] = INTERNAL_SERVER_ERROR
    else:
        extensions["code"] = BAD_USER_INPUT
