"""Query parameters: declared once, parsed by the handlers' calls and documented from the same
declaration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from app.errors import BadRequest, FieldError
from app.validation import invalid_from
from models.enums import RowStatus

#: Largest value a counter in the database holds (PostgreSQL `integer`).
MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class QueryParam:
    name: str
    #: The type of a given value (pydantic validates and documents it).
    annotation: Any
    description: str
    default: Any = None
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.annotation))

    def parse(self, raw: str | None) -> Any:
        if raw is None:
            return self.default
        try:
            return self.adapter.validate_python(raw)
        except ValidationError as exc:
            raise invalid_from(exc, prefix=self.name) from None

    def json_schema(self) -> dict[str, Any]:
        return self.adapter.json_schema()


def parse_query(params: tuple[QueryParam, ...], given: Mapping[str, str]) -> dict[str, Any]:
    """The declared parameters' values (defaults for those not given), named as the service
    function's keyword arguments. An unknown parameter is a 400, like an unknown body field:
    a typo such as `limt` must not silently return everything."""
    declared = {param.name for param in params}
    unknown = sorted(name for name in given if name not in declared)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(repr(name) for name in unknown)}",
            [FieldError(name, "unknown query parameter") for name in unknown],
        )
    return {param.name: param.parse(given.get(param.name)) for param in params}


LIMIT = QueryParam(
    "limit",
    Annotated[int, Field(ge=1, le=100)],
    "Return at most this many items (1 to 100). Without it, every item is returned.",
)
OFFSET = QueryParam(
    "offset", Annotated[int, Field(ge=0, le=MAX_INT32)], "Skip this many items first.", default=0
)
AFTER = QueryParam(
    "after",
    Annotated[int, Field(ge=0, le=MAX_INT32)],
    "Only events with a sequence number greater than this (a replay cursor).",
    default=0,
)
ROW_STATUS = QueryParam("status", RowStatus, "Only rows with this outcome.")

PAGE = (LIMIT, OFFSET)
