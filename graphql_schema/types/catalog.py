"""Sources, parent models, audiences and destinations. Secrets never leave the services:
configs are the services' public views."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.context import ServiceContext
from app.services.audiences import AudiencePreview as AudiencePreviewResult
from app.services.destination_types import DestinationTypeInfo as DestinationTypeResult
from app.services.destinations import destination_public_config
from app.services.sources import public_config
from graphql_schema.context import Info
from graphql_schema.scalars import to_id, to_optional_id
from graphql_schema.types.enums import DestinationType, OnExit, SourceType
from models import Audience as AudienceRow
from models import Destination as DestinationRow
from models import ParentModel as ParentModelRow
from models import Source as SourceRow
from models import SplitGroup as SplitGroupRow


@strawberry.type(description="A database that audiences are computed on.")
class Source:
    id: strawberry.ID
    workspace_id: strawberry.ID
    name: str
    type: SourceType
    config: JSON = strawberry.field(description="The URL with its password hidden.")
    created_by: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, service: ServiceContext, row: SourceRow) -> Source:
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            name=row.name,
            type=SourceType(row.type),
            config=JSON(public_config(service, row)),
            created_by=to_optional_id(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class ModelColumn:
    name: str
    type: str


@strawberry.type(description="One row per person: a query or a table on a source.")
class ParentModel:
    id: strawberry.ID
    workspace_id: strawberry.ID
    source_id: strawberry.ID
    name: str
    query: str | None
    table: str | None
    primary_key: str
    columns: list[ModelColumn] | None = strawberry.field(
        description="Introspected columns; null until introspected."
    )
    created_by: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def source(self, info: Info) -> Source:
        row = await info.context.loaders.source.load(uuid.UUID(self.source_id))
        return Source.from_row(await info.context.service(), row)

    @classmethod
    def from_row(cls, row: ParentModelRow) -> ParentModel:
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            source_id=to_id(row.source_id),
            name=row.name,
            query=row.query,
            table=row.table_name,
            primary_key=row.primary_key,
            columns=None
            if row.columns is None
            else [ModelColumn(name=c["name"], type=c["type"]) for c in row.columns],
            created_by=to_optional_id(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="An A/B group or holdout of an audience (DESIGN §5.3).")
class SplitGroup:
    id: strawberry.ID
    name: str
    percentage: float
    is_holdout: bool

    @classmethod
    def from_row(cls, row: SplitGroupRow) -> SplitGroup:
        return cls(
            id=to_id(row.id),
            name=row.name,
            percentage=row.basis_points / 100,
            is_holdout=row.is_holdout,
        )


@strawberry.type(description="A successful connection check.")
class SourceCheck:
    status: str = "ok"


@strawberry.type(description="The people of a parent model who match a filter.")
class Audience:
    id: strawberry.ID
    workspace_id: strawberry.ID
    model_id: strawberry.ID
    name: str
    description: str
    filter: JSON
    created_by: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def model(self, info: Info) -> ParentModel:
        return ParentModel.from_row(await info.context.loaders.model.load(uuid.UUID(self.model_id)))

    @strawberry.field(description="The audience's split groups, in order.")
    async def split_groups(self, info: Info) -> list[SplitGroup]:
        rows = await info.context.loaders.split_groups.load(uuid.UUID(self.id))
        return [SplitGroup.from_row(row) for row in rows]

    @classmethod
    def from_row(cls, row: AudienceRow) -> Audience:
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            model_id=to_id(row.model_id),
            name=row.name,
            description=row.description,
            filter=JSON(row.filter),
            created_by=to_optional_id(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="Where audiences are sent. Secret settings are write-only.")
class Destination:
    id: strawberry.ID
    workspace_id: strawberry.ID
    name: str
    type: DestinationType
    config: JSON = strawberry.field(description="The non-secret part of the configuration.")
    secret_fields: list[str] = strawberry.field(
        description="Names of the write-only settings that are set."
    )
    created_by: strawberry.ID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, service: ServiceContext, row: DestinationRow) -> Destination:
        config, secret_fields = destination_public_config(service, row)
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            name=row.name,
            type=DestinationType(row.type),
            config=JSON(config),
            secret_fields=secret_fields,
            created_by=to_optional_id(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(description="A successful destination check.")
class DestinationCheck:
    status: str = "ok"


@strawberry.type(description="A setting of a destination type's config.")
class DestinationConfigField:
    name: str
    type: str = strawberry.field(
        description="JSON Schema type: string, integer, number, boolean, object, array, or any."
    )
    required: bool
    secret: bool = strawberry.field(description="Write-only: stored encrypted, never shown.")
    description: str | None
    default: JSON | None = strawberry.field(
        description="The value used when the setting is left out."
    )


@strawberry.type(description="A field a sync may map a column to.")
class DestinationField:
    name: str
    description: str
    identifier: bool = strawberry.field(description="Identifies the person at the destination.")
    normalizer: str | None = strawberry.field(description="How values are normalised.")
    hashed: bool = strawberry.field(description="Sent as the SHA-256 of the normalised value.")
    required: bool


@strawberry.type(description="At most `requests` requests in `perSeconds`, per account.")
class DestinationRateLimit:
    requests: int
    per_seconds: float


@strawberry.type(description="What a destination type takes and honours.")
class DestinationTypeInfo:
    type: DestinationType
    title: str
    description: str
    available: bool = strawberry.field(description="A connector exists; runs to others fail.")
    max_batch_size: int
    default_batch_size: int
    rate_limit: DestinationRateLimit | None
    custom_fields: bool = strawberry.field(description="Accepts fields beyond `fields`.")
    needs_identifier: bool = strawberry.field(description="A sync must map an identifier.")
    on_exit: list[OnExit] = strawberry.field(description="The config.on_exit values it takes.")
    config_fields: list[DestinationConfigField]
    fields: list[DestinationField]

    @classmethod
    def from_result(cls, result: DestinationTypeResult) -> DestinationTypeInfo:
        limit = result.rate_limit
        return cls(
            type=result.type,
            title=result.title,
            description=result.description,
            available=result.available,
            max_batch_size=result.max_batch_size,
            default_batch_size=result.default_batch_size,
            rate_limit=None
            if limit is None
            else DestinationRateLimit(requests=limit.requests, per_seconds=limit.per_seconds),
            custom_fields=result.custom_fields,
            needs_identifier=result.needs_identifier,
            on_exit=list(result.on_exit),
            config_fields=[
                DestinationConfigField(
                    name=f.name,
                    type=f.type,
                    required=f.required,
                    secret=f.secret,
                    description=f.description,
                    default=None if f.default is None else JSON(f.default),
                )
                for f in result.config_fields
            ],
            fields=[
                DestinationField(
                    name=f.name,
                    description=f.description,
                    identifier=f.identifier,
                    normalizer=f.normalizer,
                    hashed=f.hashed,
                    required=f.required,
                )
                for f in result.fields
            ],
        )


@strawberry.type
class SplitGroupSize:
    id: strawberry.ID
    name: str
    size: int


@strawberry.type(description="An audience's current size, a small sample and its split groups.")
class AudiencePreview:
    size: int
    sample: list[JSON]
    split_groups: list[SplitGroupSize]

    @classmethod
    def from_result(cls, result: AudiencePreviewResult) -> AudiencePreview:
        return cls(
            size=result.size,
            sample=[JSON(row) for row in result.sample],
            split_groups=[
                SplitGroupSize(id=to_id(g.id), name=g.name, size=g.size)
                for g in result.split_groups
            ],
        )
