"""Mailchimp in the contract suite: members of one audience known by their lower-cased email;
names, phone and `plan` travel as merge fields (the emulator's audience defines `PLAN`)."""

from __future__ import annotations

from typing import Any

from tests.destinations.contract.harness import Harness
from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase
from tests.emulators.mailchimp import MAX_MEMBERS, MailchimpEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, MailchimpEmulator)
    return {"base_url": base, "api_key": emulator.token, "list_id": emulator.list_id}


def _bad_config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "api_key": "fedcba9876543210fedcba9876543210-us21"}


def _identity(person: Person) -> str:
    """Mailchimp's key for a member: the email, trimmed and lower-cased (computed here, not
    by the connector's normaliser)."""
    assert person.email is not None
    return person.email.strip().lower()


HARNESS = Harness(
    type="mailchimp",
    emulator=MailchimpEmulator,
    config=_config,
    bad_config=_bad_config,
    mapping=[
        {"source_column": "email", "destination_field": "email_address"},
        {"source_column": "first_name", "destination_field": "FNAME"},
        {"source_column": "last_name", "destination_field": "LNAME"},
        {"source_column": "phone", "destination_field": "PHONE"},
        {"source_column": "plan", "destination_field": "PLAN"},
    ],
    identity=_identity,
    attribute=("PLAN", lambda p: p.plan),
    over_one_batch=MAX_MEMBERS + 1,
)
