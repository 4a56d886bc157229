"""What a destination type declares about itself: its config (secrets flagged), the fields it
accepts (identifiers, normalisation, hashing), its batch and rate limits, and how to build its
connector. The catalogue (`GET /api/v1/destination-types`, GraphQL `destinationTypes`), config
validation, sync validation and the engine's normalisation all read these declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from app.destinations.address_guard import AddressPolicy
from app.destinations.base import Connector
from app.destinations.identifiers import InvalidValue, Normalizer, normalize
from models.enums import DestinationType, OnExit


@dataclass(frozen=True)
class FieldSpec:
    name: str
    description: str
    normalizer: Normalizer | None = None
    hashed: bool = False
    #: Identifies the person at the destination; kept with what was sent, to remove them later.
    identifier: bool = False
    required: bool = False


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` requests in any `per_seconds` window, per destination account."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class BuildOptions:
    """What a connector learns from the sync and the deployment, beside its config."""

    policy: AddressPolicy
    on_exit: OnExit = OnExit.remove
    #: Names the destination account (a digest, never credentials), for its shared rate limit.
    account: str = ""


@dataclass(frozen=True)
class DestinationSpec:
    kind: DestinationType
    title: str
    config: type[BaseModel]
    build: Callable[[dict[str, Any], BuildOptions], Connector] | None
    max_batch_size: int
    default_batch_size: int
    fields: tuple[FieldSpec, ...] = ()
    #: Accepts destination fields beyond `fields` (custom attributes, columns), sent as text.
    custom_fields: bool = True
    #: A sync must map at least one identifier field.
    needs_identifier: bool = False
    rate_limit: RateLimit | None = None
    #: Batches one run keeps in flight at once unless its sync's `config.concurrency` says
    #: otherwise (DESIGN §5.5); the rate limit still paces the requests. 1: the connector
    #: sends one batch at a time, whatever the sync asks.
    concurrency: int = 1
    on_exit: frozenset[OnExit] = frozenset({OnExit.remove})
    #: Config fields whose value names the account the rate limit applies to.
    account_fields: tuple[str, ...] = ()
    description: str = ""
    by_name: Mapping[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def available(self) -> bool:
        return self.build is not None

    @property
    def public_config_fields(self) -> frozenset[str]:
        return frozenset(
            name
            for name, info in self.config.model_fields.items()
            if not (
                isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
            )
        )

    def check_mapping(self, destination_fields: list[str]) -> list[tuple[int, str]]:
        """(index, problem) for each mapped destination field this type cannot take."""
        problems = [
            (index, f"{self.kind.value} has no field {name!r}")
            for index, name in enumerate(destination_fields)
            if name not in self.by_name and not self.custom_fields
        ]
        identifiers = [f.name for f in self.fields if f.identifier]
        if self.needs_identifier and not set(identifiers) & set(destination_fields):
            problems.append((-1, f"{self.kind.value} needs one of {', '.join(identifiers)}"))
        return problems

    def prepare(self, payload: Mapping[str, Any], region: str | None) -> dict[str, Any]:
        """The payload normalised (and hashed) field by field; raises `InvalidValue` naming
        the field. Empty optional fields are left out, so they never match on anything."""
        prepared: dict[str, Any] = {}
        for name, value in payload.items():
            spec = self.by_name.get(name)
            if spec is None or spec.normalizer is None:
                prepared[name] = value
                continue
            if value is None or (isinstance(value, str) and not value.strip()):
                if spec.required:
                    raise InvalidValue(f"{name} is empty")
                continue
            try:
                prepared[name] = normalize(
                    value, spec.normalizer, hashed=spec.hashed, region=region
                )
            except InvalidValue as exc:
                raise InvalidValue(f"{name} {exc}") from None
        if self.needs_identifier and not any(
            self.by_name[name].identifier for name in prepared if name in self.by_name
        ):
            raise InvalidValue("no usable identifier")
        return prepared

    def identifiers(self, prepared: Mapping[str, Any]) -> dict[str, Any]:
        """The identifying part of a prepared payload: what a later removal needs."""
        return {
            name: value
            for name, value in prepared.items()
            if name in self.by_name and self.by_name[name].identifier
        }
