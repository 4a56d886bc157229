"""The catalogue's description of a destination type, and a type's mapping rules, on specs
built here (connectors with fixed fields arrive separately)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from app.destinations.config import secret_field
from app.destinations.identifiers import Normalizer
from app.destinations.registry import SPECS
from app.destinations.spec import DestinationSpec, FieldSpec, RateLimit
from app.services.destination_types import (
    JSON_TYPES,
    AcceptedFieldInfo,
    ConfigFieldInfo,
    RateLimitInfo,
    config_fields,
    describe,
)
from models.enums import DestinationType, OnExit


class Region(StrEnum):
    eu = "eu"
    us = "us"


class Nested(BaseModel):
    value: int


class EveryKind(BaseModel):
    text: str
    optional_text: str | None = None
    count: int = 3
    ratio: float = 0.5
    flag: bool = False
    mapping: dict[str, str] = Field(default_factory=dict)
    items: list[str] = Field(default_factory=lambda: ["a"])
    choice: Literal["x", "y"] = "x"
    region: Region = Region.eu
    maybe_region: Region | None = None
    nested: Nested | None = None
    anything: Any = None
    either: int | str = 1
    token: str = secret_field(description="the API token")


EXPECTED_TYPES = {
    "text": "string",
    "optional_text": "string",
    "count": "integer",
    "ratio": "number",
    "flag": "boolean",
    "mapping": "object",
    "items": "array",
    "choice": "string",
    "region": "string",
    "maybe_region": "string",
    "nested": "object",
    "anything": "any",
    "either": "any",
    "token": "string",
}


def test_config_fields_carry_type_requiredness_secrecy_and_defaults() -> None:
    fields = {field.name: field for field in config_fields(EveryKind)}
    assert {name: field.type for name, field in fields.items()} == EXPECTED_TYPES
    assert [name for name, field in fields.items() if field.required] == ["text", "token"]
    assert [name for name, field in fields.items() if field.secret] == ["token"]
    assert fields["token"] == ConfigFieldInfo(
        name="token",
        type="string",
        required=True,
        secret=True,
        description="the API token",
        default=None,
    )
    defaults = {name: field.default for name, field in fields.items() if not field.required}
    assert defaults == {
        "optional_text": None, "count": 3, "ratio": 0.5, "flag": False, "mapping": {},
        "items": ["a"], "choice": "x", "region": "eu", "maybe_region": None, "nested": None,
        "anything": None, "either": 1,
    }  # fmt: skip


def test_describe_reports_what_a_spec_declares() -> None:
    spec = DestinationSpec(
        kind=DestinationType.meta,
        title="Fixed",
        description="fixed fields only",
        config=EveryKind,
        build=None,
        max_batch_size=10_000,
        default_batch_size=5_000,
        fields=(
            FieldSpec("EMAIL", "email address", Normalizer.email, hashed=True, identifier=True),
            FieldSpec("FN", "first name", Normalizer.meta_name, hashed=True),
            FieldSpec("NOTE", "free text", required=True),
        ),
        custom_fields=False,
        needs_identifier=True,
        rate_limit=RateLimit(requests=300, per_seconds=60),
        on_exit=frozenset({OnExit.delete_record, OnExit.remove}),
    )
    info = describe(spec)
    assert (info.type, info.title, info.available) == (DestinationType.meta, "Fixed", False)
    assert (info.max_batch_size, info.default_batch_size) == (10_000, 5_000)
    assert info.rate_limit == RateLimitInfo(requests=300, per_seconds=60)
    assert (info.custom_fields, info.needs_identifier) == (False, True)
    assert info.on_exit == [OnExit.remove, OnExit.delete_record]  # in the enum's order
    assert info.fields == [
        AcceptedFieldInfo("EMAIL", "email address", True, "email", True, False),
        AcceptedFieldInfo("FN", "first name", False, "meta_name", True, False),
        AcceptedFieldInfo("NOTE", "free text", False, None, False, True),
    ]


FIXED = DestinationSpec(
    kind=DestinationType.google_ads,
    title="Fixed",
    config=EveryKind,
    build=None,
    max_batch_size=100,
    default_batch_size=100,
    fields=(
        FieldSpec("email", "email", Normalizer.google_email, hashed=True, identifier=True),
        FieldSpec("phone", "phone", Normalizer.phone_e164, hashed=True, identifier=True),
        FieldSpec("country", "country", Normalizer.country),
    ),
    custom_fields=False,
    needs_identifier=True,
)


@pytest.mark.parametrize(
    ("mapped", "problems"),
    [
        (["email"], []),
        (["phone", "country"], []),
        (["email", "phone", "country"], []),
        (["email", "favourite_colour"], [(1, "google_ads has no field 'favourite_colour'")]),
        (
            ["Email", "country"],
            [(0, "google_ads has no field 'Email'"), (-1, "google_ads needs one of email, phone")],
        ),
        (["country"], [(-1, "google_ads needs one of email, phone")]),
        ([], [(-1, "google_ads needs one of email, phone")]),
    ],
)
def test_a_type_with_fixed_fields_checks_the_mapping(
    mapped: list[str], problems: list[tuple[int, str]]
) -> None:
    assert FIXED.check_mapping(mapped) == problems


def test_a_type_with_custom_fields_takes_any_field() -> None:
    spec = DestinationSpec(
        kind=DestinationType.webhook,
        title="Open",
        config=EveryKind,
        build=None,
        max_batch_size=1,
        default_batch_size=1,
        fields=(FieldSpec("email", "email", Normalizer.email, identifier=True),),
    )
    assert spec.check_mapping(["anything", "at_all"]) == []


@pytest.mark.parametrize("kind", list(DestinationType), ids=str)
def test_every_registered_type_describes_its_config_with_json_types(
    kind: DestinationType,
) -> None:
    """A connector's config should be describable: every field a plain JSON Schema type."""
    info = describe(SPECS[kind])
    assert info.type is kind
    assert all(field.type in JSON_TYPES for field in info.config_fields), info.config_fields
    assert [field.name for field in info.config_fields] == list(SPECS[kind].config.model_fields)
    assert 1 <= info.default_batch_size <= info.max_batch_size
