"""The destination-type catalogue: what each type of `registry.SPECS` declares, as data a
client can build a form from (config fields with secrets flagged, accepted fields, limits).

Read by REST `GET /api/v1/destination-types` and GraphQL `destinationTypes`. It describes
the deployment, not a workspace: any authenticated caller may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from app.context import ServiceContext
from app.destinations.registry import SPECS
from app.destinations.spec import DestinationSpec, FieldSpec
from models.enums import DestinationType, OnExit

#: The JSON Schema types a config field may be described with; `any` when it has none.
JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array")


@dataclass(frozen=True)
class ConfigFieldInfo:
    name: str
    #: A JSON Schema type (`string`, `integer`, `number`, `boolean`, `object`, `array`) or `any`.
    type: str
    required: bool
    #: Write-only: stored encrypted, never shown back.
    secret: bool
    description: str | None
    #: The value used when the field is left out (null when it has none).
    default: Any


@dataclass(frozen=True)
class AcceptedFieldInfo:
    """A destination field a sync may map a column to."""

    name: str
    description: str
    identifier: bool
    #: The `Normalizer` applied before sending (and hashing), or None for text as it is.
    normalizer: str | None
    hashed: bool
    required: bool


@dataclass(frozen=True)
class RateLimitInfo:
    requests: int
    per_seconds: float


@dataclass(frozen=True)
class DestinationTypeInfo:
    type: DestinationType
    title: str
    description: str
    #: A connector exists; destinations of other types may be stored, but runs to them fail.
    available: bool
    max_batch_size: int
    default_batch_size: int
    rate_limit: RateLimitInfo | None
    #: Accepts destination fields beyond `fields` (custom attributes, columns).
    custom_fields: bool
    #: A sync must map at least one identifier field.
    needs_identifier: bool
    #: The `config.on_exit` values a sync to this type may use.
    on_exit: list[OnExit]
    config_fields: list[ConfigFieldInfo]
    fields: list[AcceptedFieldInfo]


async def list_destination_types(ctx: ServiceContext) -> list[DestinationTypeInfo]:
    """Every destination type, in the order of `DestinationType`. Needs only a valid token:
    the catalogue is the same for every workspace (`ctx` proves the caller authenticated)."""
    return [describe(spec) for spec in SPECS.values()]


def describe(spec: DestinationSpec) -> DestinationTypeInfo:
    return DestinationTypeInfo(
        type=spec.kind,
        title=spec.title,
        description=spec.description,
        available=spec.available,
        max_batch_size=spec.max_batch_size,
        default_batch_size=spec.default_batch_size,
        rate_limit=None
        if spec.rate_limit is None
        else RateLimitInfo(
            requests=spec.rate_limit.requests, per_seconds=spec.rate_limit.per_seconds
        ),
        custom_fields=spec.custom_fields,
        needs_identifier=spec.needs_identifier,
        on_exit=[value for value in OnExit if value in spec.on_exit],
        config_fields=config_fields(spec.config),
        fields=[_accepted_field(field) for field in spec.fields],
    )


def config_fields(config: type[BaseModel]) -> list[ConfigFieldInfo]:
    """The fields of a config model, as its JSON Schema and its secret markers describe them."""
    schema = config.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    definitions: dict[str, Any] = schema.get("$defs", {})
    return [
        ConfigFieldInfo(
            name=name,
            type=json_type(properties.get(info.alias or name, {}), definitions),
            required=info.is_required(),
            secret=_is_secret(info),
            description=info.description,
            default=_default(info),
        )
        for name, info in config.model_fields.items()
    ]


def json_type(schema: dict[str, Any], definitions: dict[str, Any]) -> str:
    """The one JSON Schema type of a property (null aside), or `any` when it has none."""
    while "$ref" in schema:
        schema = definitions.get(schema["$ref"].rsplit("/", 1)[1], {})
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    types = [t for t in types if t != "null"]
    if len(types) == 1 and types[0] in JSON_TYPES:
        return str(types[0])
    branches = [
        json_type(branch, definitions)
        for branch in schema.get("anyOf", schema.get("oneOf", []))
        if branch.get("type") != "null"
    ]
    if branches and len(set(branches)) == 1:
        return branches[0]
    if "const" in schema or "enum" in schema:
        values = schema.get("enum", [schema.get("const")])
        kinds = {_value_type(value) for value in values}
        if len(kinds) == 1:
            return kinds.pop()
    return "any"


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "any"


def _is_secret(info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _default(info: FieldInfo) -> Any:
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True, validated_data={})
    return None if value is PydanticUndefined else to_jsonable_python(value)


def _accepted_field(field: FieldSpec) -> AcceptedFieldInfo:
    return AcceptedFieldInfo(
        name=field.name,
        description=field.description,
        identifier=field.identifier,
        normalizer=None if field.normalizer is None else field.normalizer.value,
        hashed=field.hashed,
        required=field.required,
    )
