"""Shapes of the audience sync, exactly as the published contract names them."""

from __future__ import annotations

import uuid
import zoneinfo
from typing import Any, Literal

from croniter import croniter
from pydantic import Field, field_validator

from models.enums import OnExit, SyncMode, SyncStatus
from models.shapes.common import DescriptionStr, InputShape, NameStr, OutputShape, Timestamp

#: Fields the server owns; setting one in a body is a 400 naming it.
SYNC_READ_ONLY_FIELDS = (
    "id",
    "workspace_id",
    "created_by",
    "created_at",
    "updated_at",
    "last_synced_at",
    "last_run_id",
    "status_error",
)
SYNC_NULLABLE_FIELDS = ("schedule", "split_group_id", "description")
SettableStatus = Literal["draft", "active", "paused"]


class FieldMapping(InputShape):
    source_column: NameStr
    destination_field: NameStr


class SyncConfig(InputShape):
    """Sync options (DESIGN §5.4); unset options take the engine's defaults."""

    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    on_exit: OnExit | None = None
    max_removal_ratio: float | None = Field(default=None, ge=0, le=1)
    timezone: str | None = None
    retry_failed_rows: bool | None = None
    #: Batches a run keeps in flight at once (a destination that takes one at a time stays at 1).
    concurrency: int | None = Field(default=None, ge=1, le=64)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


def validate_cron(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if len(value.split(" ")) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid five-field cron expression")
    return value


def _unique_destination_fields(mapping: list[FieldMapping] | None) -> None:
    if mapping is None:
        return
    seen: set[str] = set()
    for item in mapping:
        if item.destination_field in seen:
            raise ValueError(f"destination_field {item.destination_field!r} is mapped twice")
        seen.add(item.destination_field)


class AudienceSyncCreate(InputShape):
    name: NameStr
    description: DescriptionStr | None = ""
    audience_id: uuid.UUID
    destination_id: uuid.UUID
    field_mapping: list[FieldMapping] = Field(min_length=1, max_length=500)
    sync_mode: SyncMode
    schedule: str | None = None
    config: SyncConfig = Field(default_factory=SyncConfig)
    split_group_id: uuid.UUID | None = None
    status: SettableStatus = "active"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return validate_cron(value)

    @field_validator("field_mapping")
    @classmethod
    def _mapping(cls, value: list[FieldMapping]) -> list[FieldMapping]:
        _unique_destination_fields(value)
        return value


class AudienceSyncUpdate(InputShape):
    """Only the fields given change."""

    name: NameStr | None = None
    description: DescriptionStr | None = None
    audience_id: uuid.UUID | None = None
    destination_id: uuid.UUID | None = None
    field_mapping: list[FieldMapping] | None = Field(default=None, min_length=1, max_length=500)
    sync_mode: SyncMode | None = None
    schedule: str | None = None
    config: SyncConfig | None = None
    split_group_id: uuid.UUID | None = None
    status: SettableStatus | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return validate_cron(value)

    @field_validator("field_mapping")
    @classmethod
    def _mapping(cls, value: list[FieldMapping] | None) -> list[FieldMapping] | None:
        _unique_destination_fields(value)
        return value


class AudienceSyncPublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    audience_id: uuid.UUID
    destination_id: uuid.UUID
    name: str
    description: str
    field_mapping: list[dict[str, Any]]
    sync_mode: SyncMode
    schedule: str | None
    config: dict[str, Any]
    status: SyncStatus
    status_error: str
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp
    last_synced_at: Timestamp | None
    last_run_id: uuid.UUID | None
    split_group_id: uuid.UUID | None
