"""A destination's declared fields drive the payload's normalisation (DESIGN §8)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from app.destinations.config import ConnectorConfig
from app.destinations.identifiers import InvalidValue, Normalizer
from app.destinations.spec import DestinationSpec, FieldSpec
from models.enums import DestinationType

SPEC = DestinationSpec(
    kind=DestinationType.meta,
    title="test",
    config=ConnectorConfig,
    build=None,
    max_batch_size=10,
    default_batch_size=10,
    fields=(
        FieldSpec("email", "", Normalizer.email, hashed=True, identifier=True),
        FieldSpec("phone", "", Normalizer.phone_digits, hashed=True, identifier=True),
        FieldSpec("country", "", Normalizer.country),
    ),
    custom_fields=True,
    needs_identifier=True,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_declared_fields_are_normalised_and_hashed_others_pass_through() -> None:
    prepared = SPEC.prepare(
        {"email": " A@B.co ", "phone": "(650) 253-0000", "country": "us", "plan": "pro"}, "US"
    )
    assert prepared == {
        "email": sha("a@b.co"),
        "phone": sha("16502530000"),
        "country": "US",
        "plan": "pro",
    }
    assert SPEC.identifiers(prepared) == {"email": sha("a@b.co"), "phone": sha("16502530000")}


def test_an_empty_optional_identifier_is_left_out_when_another_one_is_usable() -> None:
    assert SPEC.prepare({"email": "a@b.co", "phone": None}, None) == {"email": sha("a@b.co")}


def test_a_bad_value_names_its_field_and_no_identifier_at_all_is_invalid() -> None:
    with pytest.raises(InvalidValue, match=r"^email is not an email address$"):
        SPEC.prepare({"email": "nope", "phone": "+16502530000"}, None)
    with pytest.raises(InvalidValue, match="no usable identifier"):
        SPEC.prepare({"email": None, "country": "US"}, None)


def test_mapping_checks_unknown_fields_and_the_identifier() -> None:
    fixed = replace(SPEC, custom_fields=False)
    assert fixed.check_mapping(["email", "plan"]) == [(1, "meta has no field 'plan'")]
    assert fixed.check_mapping(["country"]) == [(-1, "meta needs one of email, phone")]
    assert SPEC.check_mapping(["email", "plan"]) == []  # custom fields allowed
