"""GraphQL inputs to the raw snake_case bodies the services validate.

Fields left out of an input (UNSET) are left out of the body, so an update changes only
what was given and an explicit `null` reaches the service as `None`.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from strawberry import UNSET


def to_body(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_body(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if getattr(value, field.name) is not UNSET
        }
    if isinstance(value, list):
        return [to_body(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value
