"""Shapes of sources, models, audiences and destinations (DESIGN §3.2)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field, RootModel, model_validator

from models.enums import DestinationType, OnExit, SourceType
from models.shapes.common import DescriptionStr, InputShape, NameStr, OutputShape, Timestamp

CATALOG_READ_ONLY_FIELDS = ("id", "workspace_id", "created_by", "created_at", "updated_at")


class SourceConfig(InputShape):
    url: str = Field(min_length=1, max_length=4000, description="SQLAlchemy URL")


class SourceCreate(InputShape):
    name: NameStr
    type: SourceType
    config: SourceConfig


class SourceUpdate(InputShape):
    name: NameStr | None = None
    type: SourceType | None = None
    config: SourceConfig | None = None


class SourcePublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    type: SourceType
    config: dict[str, Any] = Field(description="the URL with its password hidden")
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp


class SourceCheck(OutputShape):
    """A successful connection check (a failed one is a 422 naming `config.url`)."""

    status: Literal["ok"] = "ok"


SqlText = Field(default=None, min_length=1, max_length=100_000)


class ModelCreate(InputShape):
    name: NameStr
    source_id: uuid.UUID
    query: str | None = SqlText
    table: NameStr | None = None
    primary_key: NameStr

    @model_validator(mode="after")
    def _query_or_table(self) -> ModelCreate:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of 'query' and 'table'")
        return self


class ModelUpdate(InputShape):
    name: NameStr | None = None
    query: str | None = SqlText
    table: NameStr | None = None
    primary_key: NameStr | None = None

    @model_validator(mode="after")
    def _query_or_table(self) -> ModelUpdate:
        if self.query is not None and self.table is not None:
            raise ValueError("give at most one of 'query' and 'table'")
        return self


class ModelColumn(OutputShape):
    name: str
    type: str


class ModelPublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    source_id: uuid.UUID
    name: str
    query: str | None
    table: str | None
    primary_key: str
    columns: list[ModelColumn] | None
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp


class AudienceCreate(InputShape):
    name: NameStr
    description: DescriptionStr = ""
    model_id: uuid.UUID
    filter: dict[str, Any] = Field(default_factory=dict)


class AudienceUpdate(InputShape):
    name: NameStr | None = None
    description: DescriptionStr | None = None
    filter: dict[str, Any] | None = None


class AudiencePublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    model_id: uuid.UUID
    name: str
    description: str
    filter: dict[str, Any]
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp


class AudiencePreviewOptions(InputShape):
    columns: list[NameStr] | None = Field(
        default=None,
        max_length=200,
        description="The model columns of each sample row (default: all); the key comes first",
    )


class PreviewSplitGroup(OutputShape):
    id: uuid.UUID
    name: str
    size: int


class AudiencePreviewPublic(OutputShape):
    size: int = Field(description="How many members the audience has now")
    sample: list[dict[str, Any]] = Field(description="At most 100 members, in key order")
    split_groups: list[PreviewSplitGroup]


class SplitGroupInput(InputShape):
    name: NameStr
    percentage: float = Field(
        strict=True, description="Share of the audience: above 0, at most 100, two decimals"
    )
    is_holdout: bool = False


class SplitGroupsReplace(RootModel[list[SplitGroupInput]]):
    """The whole set of an audience's split groups, in order; percentages sum to 100."""


class SplitGroupPublic(OutputShape):
    id: uuid.UUID
    name: str
    percentage: float
    is_holdout: bool


class DestinationCreate(InputShape):
    name: NameStr
    type: DestinationType
    config: dict[str, Any]


class DestinationUpdate(InputShape):
    name: NameStr | None = None
    config: dict[str, Any] | None = None


class DestinationPublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    type: DestinationType
    config: dict[str, Any] = Field(description="the non-secret part of the configuration")
    secret_fields: list[str] = Field(description="names of the write-only fields that are set")
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp


class DestinationCheck(OutputShape):
    """A successful destination check (a failed one is a 422 naming `config`)."""

    status: Literal["ok"] = "ok"


class DestinationConfigFieldPublic(OutputShape):
    name: str
    type: str = Field(
        description="JSON Schema type: string, integer, number, boolean, object, array, or any"
    )
    required: bool
    secret: bool = Field(description="write-only: stored encrypted, never shown back")
    description: str | None
    default: Any = Field(description="the value used when the field is left out (or null)")


class DestinationFieldPublic(OutputShape):
    name: str
    description: str
    identifier: bool = Field(description="identifies the person at the destination")
    normalizer: str | None = Field(description="how values are normalised before sending")
    hashed: bool = Field(description="sent as the SHA-256 of the normalised value")
    required: bool


class RateLimitPublic(OutputShape):
    requests: int
    per_seconds: float


class DestinationTypePublic(OutputShape):
    """What a destination type takes and honours (the destination-type catalogue)."""

    type: DestinationType
    title: str
    description: str
    available: bool = Field(description="a connector exists; runs to other types fail")
    max_batch_size: int
    default_batch_size: int
    rate_limit: RateLimitPublic | None = Field(description="per destination account")
    custom_fields: bool = Field(description="accepts destination fields beyond `fields`")
    needs_identifier: bool = Field(description="a sync must map one identifier field")
    on_exit: list[OnExit] = Field(description="the `config.on_exit` values a sync may use")
    config_fields: list[DestinationConfigFieldPublic]
    fields: list[DestinationFieldPublic] = Field(description="the fields a sync may map to")
