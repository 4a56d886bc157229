"""Google Ads Customer Match in the contract suite with OAuth client credentials and a
refresh token: access tokens come from the emulated token endpoint (and expire within the
suite's runs, so renewal is on the way of every mode); the refused config's refresh token
was revoked."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.destinations.contract.harnesses.google_ads import HARNESS as ACCESS_TOKEN
from tests.emulators.base import EmulatorBase
from tests.emulators.google_ads import GoogleAdsEmulator


def _emulator() -> GoogleAdsEmulator:
    return GoogleAdsEmulator(token_lifetime=61)  # renewed a minute early: every second


def _config(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    assert isinstance(emulator, GoogleAdsEmulator)
    config = {
        **ACCESS_TOKEN.config(emulator, base),
        "token_url": f"{base}/token",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "refresh_token": emulator.refresh_token,
    }
    del config["access_token"]
    return config


def _refused(emulator: EmulatorBase, base: str) -> dict[str, Any]:
    return {**_config(emulator, base), "refresh_token": "1//0revoked-refresh-token"}


HARNESS = replace(
    ACCESS_TOKEN, name="google_ads_refresh", emulator=_emulator, config=_config, bad_config=_refused
)
