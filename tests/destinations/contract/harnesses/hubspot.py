"""HubSpot in the contract suite: contacts known by their lower-cased email, kept in a list;
`plan` is a custom property the emulator's portal defines."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase
from tests.emulators.hubspot import MAX_INPUTS, HubSpotEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, HubSpotEmulator)
    return {"base_url": base, "access_token": emulator.token, "list_id": emulator.list_id}


def _bad_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "access_token": "pat-na1-refused-token-0000"}


def _identity(person: Person) -> str:
    """HubSpot's key for a contact: the email, trimmed and lower-cased (computed here, not
    by the connector's normaliser)."""
    assert person.email is not None
    return person.email.strip().lower()


HARNESS = Harness(
    type="hubspot",
    emulator=HubSpotEmulator,
    config=_config,
    bad_config=_bad_config,
    mapping=[
        {"source_column": "email", "destination_field": "email"},
        {"source_column": "first_name", "destination_field": "firstname"},
        {"source_column": "last_name", "destination_field": "lastname"},
        {"source_column": "phone", "destination_field": "phone"},
        {"source_column": "zip", "destination_field": "zip"},
        {"source_column": "plan", "destination_field": "plan"},
    ],
    identity=_identity,
    attribute=("plan", lambda p: p.plan),
    over_one_batch=MAX_INPUTS + 1,
)
