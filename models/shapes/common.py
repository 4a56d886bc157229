"""Building blocks shared by the shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

NameStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DescriptionStr = Annotated[str, StringConstraints(max_length=2000)]

#: UTC ISO 8601 with a `Z`, to the second fraction the database keeps.
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda v: v.isoformat().replace("+00:00", "Z"), return_type=str),
    Field(json_schema_extra={"format": "date-time"}),
]


class InputShape(BaseModel):
    """Every request shape rejects unknown fields."""

    model_config = ConfigDict(extra="forbid")


class OutputShape(BaseModel):
    model_config = ConfigDict(from_attributes=True)
