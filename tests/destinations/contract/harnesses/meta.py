"""Meta Custom Audiences in the contract suite: the users-edge emulator, people named by the
SHA-256 of their normalised email (computed here, not by the app)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.destinations.contract.harness import Harness
from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase
from tests.emulators.meta import MetaEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, MetaEmulator)
    return {
        "base_url": base,
        "access_token": emulator.token,
        "custom_audience_id": emulator.audience_id,
        "default_phone_region": "US",
    }


def _refused(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "access_token": "EAAB-refused-access-token"}


def _identity(person: Person) -> str:
    assert person.email is not None
    return hashlib.sha256(person.email.strip().lower().encode()).hexdigest()


HARNESS = Harness(
    type="meta",
    emulator=MetaEmulator,
    config=_config,
    bad_config=_refused,
    mapping=[
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "phone", "destination_field": "phone"},
        {"source_column": "first_name", "destination_field": "first_name"},
        {"source_column": "last_name", "destination_field": "last_name"},
        {"source_column": "country", "destination_field": "country"},
        {"source_column": "zip", "destination_field": "zip"},
    ],
    identity=_identity,
    over_one_batch=10_001,
)
