"""Google Ads Customer Match in the contract suite: the Data Manager API emulator, people
named by the SHA-256 of their normalised email (computed here, not by the app)."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.destinations.contract.harness import Harness
from tests.destinations.contract.people import Person
from tests.emulators.base import EmulatorBase
from tests.emulators.google_ads import GoogleAdsEmulator


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, GoogleAdsEmulator)
    return {
        "base_url": base,
        "access_token": emulator.token,
        "operating_account_id": emulator.operating_account,
        "user_list_id": emulator.user_list,
        "default_phone_region": "US",
        "accept_customer_match_terms": True,
        "ad_user_data_consent": "CONSENT_GRANTED",
        "ad_personalization_consent": "CONSENT_GRANTED",
    }


def _refused(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "access_token": "ya29.a0-refused-access-token"}


def _identity(person: Person) -> str:
    # Google: whitespace removed, lower-cased (no gmail.com addresses among the people).
    assert person.email is not None
    email = "".join(person.email.split()).lower()
    return hashlib.sha256(email.encode()).hexdigest()


HARNESS = Harness(
    type="google_ads",
    emulator=GoogleAdsEmulator,
    config=_config,
    bad_config=_refused,
    mapping=[
        {"source_column": "email", "destination_field": "hashedEmail"},
        {"source_column": "phone", "destination_field": "hashedPhoneNumber"},
        {"source_column": "first_name", "destination_field": "hashedFirstName"},
        {"source_column": "last_name", "destination_field": "hashedLastName"},
        {"source_column": "country", "destination_field": "countryCode"},
        {"source_column": "zip", "destination_field": "postalCode"},
    ],
    identity=_identity,
    over_one_batch=10_001,
)
