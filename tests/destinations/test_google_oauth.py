"""Google credentials that outlive an access token: the connector obtains access tokens
from a refresh token at the (emulated) OAuth token endpoint, renews them before they expire
and when the API refuses one, renews once for concurrent requests, and stops the run when
Google refuses the refresh token, never echoing a credential."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.destinations.address_guard import allow_all
from app.destinations.base import AccessDenied, TerminalError
from app.destinations.config import validated
from app.destinations.google_ads import SPEC, GoogleAdsConfig, GoogleAdsConnector
from app.destinations.registry import public_view, secret_fields
from app.destinations.spec import BuildOptions
from models.enums import DestinationType
from tests.destinations.test_google_ads import batch, person
from tests.emulators.google_ads import GoogleAdsEmulator
from tests.servers import serve_in_thread


@pytest.fixture
def emulator() -> GoogleAdsEmulator:
    return GoogleAdsEmulator()


@pytest.fixture
def base_url(emulator: GoogleAdsEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def refresh_config(emulator: GoogleAdsEmulator, base: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": base,
        "token_url": f"{base}/token",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "refresh_token": emulator.refresh_token,
        "operating_account_id": emulator.operating_account,
        "user_list_id": emulator.user_list,
        "default_phone_region": "US",
        "accept_customer_match_terms": True,
        **extra,
    }


def connector_for(config: dict[str, Any]) -> GoogleAdsConnector:
    options = BuildOptions(policy=allow_all, account=f"test-{uuid.uuid4()}")
    return GoogleAdsConnector(config, options, rate_limit=None)


async def test_access_tokens_come_from_the_refresh_token_and_are_reused(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    connector = connector_for(refresh_config(emulator, base_url))
    try:
        await connector.check()
        first = await connector.send(batch(person(1), person(2)))
        second = await connector.send(batch(person(3)))
    finally:
        await connector.close()
    assert first.accepted == ("1", "2") and second.accepted == ("3",)
    assert emulator.token_requests == [
        {
            "grant_type": "refresh_token",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "refresh_token": emulator.refresh_token,
        }
    ]
    [issued] = emulator.issued
    assert {h["authorization"] for h in emulator.headers} == {f"Bearer {issued}"}
    assert len(emulator.held) == 3


async def test_a_token_is_renewed_before_it_expires(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    emulator.token_lifetime = 61  # renewed a minute early: after one second
    connector = connector_for(refresh_config(emulator, base_url))
    try:
        await connector.send(batch(person(1)))
        await asyncio.sleep(1.1)
        await connector.send(batch(person(2)))
    finally:
        await connector.close()
    assert len(emulator.token_requests) == 2
    assert [entry.status for entry in emulator.log] == [200, 200]  # no 401 on the way


async def test_a_refused_token_is_renewed_once_for_concurrent_requests(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    connector = connector_for(refresh_config(emulator, base_url))
    try:
        await connector.send(batch(person(1)))
        emulator.expire_tokens()  # Google refuses the token before we expect it to
        results = await asyncio.gather(*(connector.send(batch(person(i))) for i in (2, 3, 4)))
    finally:
        await connector.close()
    assert [r.accepted for r in results] == [("2",), ("3",), ("4",)]
    assert len(emulator.token_requests) == 2
    assert [entry.status for entry in emulator.log].count(401) == 3
    assert len(emulator.held) == 4


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"revoked": True}, "invalid_grant"),
        ({"client_secret": "GOCSPX-another-secret"}, "invalid_client"),
    ],
)
async def test_a_refused_refresh_token_denies_access_without_echo(
    emulator: GoogleAdsEmulator,
    base_url: str,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    error: str,
) -> None:
    config = refresh_config(emulator, base_url)
    for name, value in change.items():
        setattr(emulator, name, value)
    caplog.set_level(logging.DEBUG)
    for attempt in ("check", "send"):
        connector = connector_for(config)
        try:
            with pytest.raises(AccessDenied) as caught:
                if attempt == "check":
                    await connector.check()
                else:
                    await connector.send(batch(person(1)))
        finally:
            await connector.close()
        message = str(caught.value)
        assert error in message and "google" in message
        for secret in (config["client_secret"], config["refresh_token"]):
            assert secret not in message and secret not in caplog.text
    assert not emulator.held and not emulator.log  # the API was never called


def test_the_config_takes_an_access_token_or_a_refresh_token_not_both_nor_half(
    emulator: GoogleAdsEmulator,
) -> None:
    both = {**refresh_config(emulator, "https://datamanager.googleapis.com"), "access_token": "t"}
    half = refresh_config(emulator, "https://datamanager.googleapis.com")
    del half["client_secret"]
    for config, words in ((both, "not both"), (half, "all of client_id")):
        with pytest.raises(TerminalError) as caught:
            validated(GoogleAdsConfig, config, "google_ads")
        assert words in str(caught.value)
        assert emulator.refresh_token not in str(caught.value)
    bad_url = {**refresh_config(emulator, "https://x.example"), "token_url": "ftp://x"}
    with pytest.raises(TerminalError, match="token_url"):
        validated(GoogleAdsConfig, bad_url, "google_ads")
    config = refresh_config(emulator, "https://datamanager.googleapis.com")
    shown = public_view(DestinationType.google_ads, config)
    assert secret_fields(DestinationType.google_ads, config) == ["client_secret", "refresh_token"]
    assert "client_secret" not in shown and "refresh_token" not in shown
    assert shown["client_id"] == emulator.client_id and SPEC.kind is DestinationType.google_ads
