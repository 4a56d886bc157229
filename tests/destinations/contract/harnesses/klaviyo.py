"""Klaviyo in the contract suite: profiles known by their lower-cased email, kept in a list;
phone numbers go out in E.164 (national ones read as US), `plan` becomes a profile property."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase
from tests.emulators.klaviyo import MAX_PROFILES, KlaviyoEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, KlaviyoEmulator)
    return {
        "base_url": base,
        "api_key": emulator.token,
        "list_id": emulator.list_id,
        "default_phone_region": "US",
    }


def _bad_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "api_key": "pk_refused_00000000000000000000000"}


def _identity(person: Person) -> str:
    """Klaviyo's key for these profiles: the email, trimmed and lower-cased (computed here,
    not by the connector's normaliser)."""
    assert person.email is not None
    return person.email.strip().lower()


HARNESS = Harness(
    type="klaviyo",
    emulator=KlaviyoEmulator,
    config=_config,
    bad_config=_bad_config,
    mapping=[
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "phone", "destination_field": "phone_number"},
        {"source_column": "first_name", "destination_field": "first_name"},
        {"source_column": "last_name", "destination_field": "last_name"},
        {"source_column": "zip", "destination_field": "zip"},
        {"source_column": "plan", "destination_field": "plan"},
    ],
    identity=_identity,
    attribute=("plan", lambda p: p.plan),
    over_one_batch=MAX_PROFILES + 1,
)
