"""Braze in the contract suite: users known by `external_id` (the person's id), membership kept
in a boolean custom attribute; `plan` is sent as a custom attribute."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.emulators.base import EmulatorBase
from tests.emulators.braze import MAX_OBJECTS, BrazeEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, BrazeEmulator)
    return {
        "base_url": base,
        "api_key": emulator.token,
        "membership_attribute": emulator.membership_attribute,
        "default_phone_region": "US",
    }


def _bad_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "api_key": "b7e2f0c4-refused-rest-api-key"}


HARNESS = Harness(
    type="braze",
    emulator=BrazeEmulator,
    config=_config,
    bad_config=_bad_config,
    mapping=[
        {"source_column": "id", "destination_field": "external_id"},
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "phone", "destination_field": "phone"},
        {"source_column": "first_name", "destination_field": "first_name"},
        {"source_column": "country", "destination_field": "country"},
        {"source_column": "plan", "destination_field": "plan"},
    ],
    identity=lambda p: str(p.id),
    attribute=("plan", lambda p: p.plan),
    over_one_batch=MAX_OBJECTS + 1,
)
