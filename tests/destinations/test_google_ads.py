"""The Google Ads connector against the Data Manager API emulator: the exact requests it
sends (hashing, E.164 with +, consent, terms, destinations), fast-fail per-member errors,
credentials (an access token, or access tokens obtained and renewed from a refresh token at
the emulated OAuth token endpoint), pacing, and the emulator's own strictness."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.destinations.address_guard import allow_all
from app.destinations.base import (
    AccessDenied,
    Batch,
    Operation,
    Record,
    TerminalError,
    TransientError,
)
from app.destinations.config import validated
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.google_ads import SPEC, GoogleAdsConfig, GoogleAdsConnector
from app.destinations.identifiers import InvalidValue
from app.destinations.registry import public_view, secret_fields
from app.destinations.spec import BuildOptions, RateLimit
from models.enums import DestinationType
from tests.emulators.base import RateWindow
from tests.emulators.google_ads import GoogleAdsEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.5)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emulator() -> GoogleAdsEmulator:
    return GoogleAdsEmulator()


@pytest.fixture
def base_url(emulator: GoogleAdsEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def config_for(emulator: GoogleAdsEmulator, base: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": base,
        "access_token": emulator.token,
        "operating_account_id": emulator.operating_account,
        "user_list_id": emulator.user_list,
        "default_phone_region": "US",
        "accept_customer_match_terms": True,
        **extra,
    }


def connector_for(
    emulator: GoogleAdsEmulator,
    base: str,
    *,
    rate_limit: RateLimit | None = None,
    **extra: Any,
) -> GoogleAdsConnector:
    options = BuildOptions(policy=allow_all, account=f"test-{uuid.uuid4()}")
    return GoogleAdsConnector(config_for(emulator, base, **extra), options, rate_limit=rate_limit)


@pytest.fixture
async def connector(
    emulator: GoogleAdsEmulator, base_url: str
) -> AsyncIterator[GoogleAdsConnector]:
    connector = connector_for(emulator, base_url)
    yield connector
    await connector.close()


def person(i: int, **raw: Any) -> Record:
    """Member `i`, prepared by the spec from raw values as a source holds them."""
    values = {
        "hashedEmail": f" Member.{i}@Example.com ",
        "hashedPhoneNumber": f"(650) 253-{i:04d}",
        "hashedFirstName": f" Ada{i} ",
        "hashedLastName": "Lovelace",
        "countryCode": "us",
        "postalCode": " 94043 ",
        **raw,
    }
    return Record(str(i), SPEC.prepare(values, "US"))


def batch(*records: Record, operation: Operation = Operation.add) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


async def test_ingest_sends_google_normalised_hashes_and_the_destination(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    connector = connector_for(
        emulator,
        base_url,
        ad_user_data_consent="CONSENT_GRANTED",
        ad_personalization_consent="CONSENT_DENIED",
        login_account_id="9990001111",
        quota_project_id="signalsmith-prod",
    )
    gmail = person(1, hashedEmail=" Jane.Doe+ads@GoogleMail.com ")
    try:
        result = await connector.send(batch(gmail, person(2)))
    finally:
        await connector.close()
    assert result.accepted == ("1", "2") and not result.rejected
    [body] = emulator.bodies
    assert body["destinations"] == [
        {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9990001111"},
            "productDestinationId": "5550001",
        }
    ]
    assert body["encoding"] == "HEX"
    assert body["consent"] == {
        "adUserData": "CONSENT_GRANTED",
        "adPersonalization": "CONSENT_DENIED",
    }
    assert body["termsOfService"] == {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
    first = body["audienceMembers"][0]["userData"]["userIdentifiers"]
    assert first == [
        {"emailAddress": sha("janedoe@googlemail.com")},  # gmail: dots and +tag dropped
        {"phoneNumber": sha("+16502530001")},  # E.164 with its +
        {
            "address": {
                "givenName": sha("ada1"),
                "familyName": sha("lovelace"),
                "regionCode": "US",  # in clear
                "postalCode": "94043",  # in clear
            }
        },
    ]
    assert body["audienceMembers"][1]["userData"]["userIdentifiers"][0] == {
        "emailAddress": sha("member.2@example.com")  # not gmail: dots kept
    }
    headers = emulator.headers[-1]
    assert headers["authorization"] == f"Bearer {emulator.token}"
    assert headers["x-goog-user-project"] == "signalsmith-prod"
    assert set(emulator.members()) == {sha("janedoe@googlemail.com"), sha("member.2@example.com")}


async def test_consent_is_not_claimed_unless_configured_and_terms_are_required(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    silent = connector_for(emulator, base_url, accept_customer_match_terms=False)
    try:
        refused = await deliver(silent, batch(person(1), person(2)), FAST)
        emulator.terms_accepted = True  # accepted on the account in the Google Ads UI
        accepted = await silent.send(batch(person(3)))
    finally:
        await silent.close()
    assert not refused.accepted and {k for k, _ in refused.rejected} == {"1", "2"}
    assert all("TERMS_AND_CONDITIONS_NOT_SIGNED" in reason for _, reason in refused.rejected)
    assert accepted.accepted == ("3",)
    assert all("consent" not in body and "termsOfService" not in body for body in emulator.bodies)


async def test_remove_names_the_identifiers_it_was_sent_with_and_no_consent(
    emulator: GoogleAdsEmulator, base_url: str, connector: GoogleAdsConnector
) -> None:
    kept, leaving = person(1), person(2)
    await connector.send(batch(kept, leaving))
    removal = Record("2", {"member_key": "2", **SPEC.identifiers(leaving.fields)})
    result = await connector.send(batch(removal, operation=Operation.remove))
    assert result.accepted == ("2",)
    assert set(emulator.members()) == {sha("member.1@example.com")}
    remove_body = emulator.bodies[-1]
    assert set(remove_body) == {"destinations", "audienceMembers", "encoding"}
    assert remove_body["audienceMembers"][0]["userData"]["userIdentifiers"][0] == {
        "emailAddress": sha("member.2@example.com")
    }
    assert emulator.log[-1].path == "/v1/audienceMembers:remove"


def test_a_partial_address_is_dropped_and_a_row_needs_a_complete_identifier() -> None:
    partial = SPEC.prepare(
        {"hashedEmail": "a@example.com", "hashedFirstName": "Ada", "countryCode": "GB"}, None
    )
    assert partial == {"hashedEmail": sha("a@example.com")}
    address_only = SPEC.prepare(
        {
            "hashedFirstName": "Ada",
            "hashedLastName": "Lovelace",
            "countryCode": "gb",
            "postalCode": "SW1A  1AA",
        },
        None,
    )
    assert address_only == {
        "hashedFirstName": sha("ada"),
        "hashedLastName": sha("lovelace"),
        "countryCode": "GB",
        "postalCode": "SW1A 1AA",
    }
    with pytest.raises(InvalidValue, match="no usable identifier"):
        SPEC.prepare({"hashedFirstName": "Ada", "countryCode": "GB"}, None)
    assert SPEC.check_mapping(["hashedEmail"]) == []
    assert (
        SPEC.check_mapping(["hashedFirstName", "hashedLastName", "countryCode", "postalCode"]) == []
    )
    [(index, problem)] = SPEC.check_mapping(["hashedFirstName", "countryCode"])
    assert index == -1 and "all of" in problem
    [(index, _)] = SPEC.check_mapping(["hashedEmail", "plan"])  # no custom fields
    assert index == 1


async def test_members_named_in_a_fast_fail_400_are_rejected_and_the_rest_sent_again(
    emulator: GoogleAdsEmulator, connector: GoogleAdsConnector
) -> None:
    emulator.reject = {sha("member.2@example.com"), sha("member.4@example.com")}
    result = await connector.send(batch(*(person(i) for i in range(1, 6))))
    assert result.accepted == ("1", "3", "5")
    assert [key for key, _ in result.rejected] == ["2", "4"]
    assert all("INVALID_AUDIENCE_MEMBER" in reason for _, reason in result.rejected)
    assert [(e.items, e.status) for e in emulator.log] == [(5, 400), (3, 200)]
    assert set(emulator.members()) == {sha(f"member.{i}@example.com") for i in (1, 3, 5)}


async def test_a_400_naming_no_member_refuses_the_request_and_delivery_isolates_it(
    emulator: GoogleAdsEmulator, connector: GoogleAdsConnector
) -> None:
    emulator.poison = {sha("member.3@example.com")}
    with pytest.raises(TerminalError, match="google_ads refused the request"):
        await connector.send(batch(person(3), person(4)))
    result = await deliver(connector, batch(*(person(i) for i in range(1, 5))), FAST)
    assert sorted(result.accepted) == ["1", "2", "4"]
    assert [key for key, _ in result.rejected] == ["3"]


async def test_check_reads_the_user_list_and_refused_tokens_deny_access_without_echo(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    good = connector_for(emulator, base_url, login_account_id="9990001111")
    bad = connector_for(emulator, base_url, access_token="ya29.not-the-right-token")
    missing = connector_for(emulator, base_url, user_list_id="404404")
    try:
        await good.check()
        assert (
            emulator.headers[-1]["login-account"] == "accountTypes/GOOGLE_ADS/accounts/9990001111"
        )
        with pytest.raises(AccessDenied) as denied:
            await bad.check()
        with pytest.raises(AccessDenied):
            await bad.send(batch(person(1)))
        with pytest.raises(TerminalError, match="404"):
            await missing.check()
    finally:
        for connector in (good, bad, missing):
            await connector.close()
    assert "UNAUTHENTICATED" in str(denied.value)
    assert "ya29.not-the-right-token" not in str(denied.value)
    assert emulator.log[0].path == (
        "/v1/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists/5550001"
    )


async def test_a_paced_connector_stays_inside_the_quota_window(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    # The documented 300 a minute, shrunk: 5 requests in any 0.5 s at the emulator; the
    # connector is told 4 per 0.5 s so local latency jitter never decides the test.
    emulator.window = RateWindow(5, 0.5)
    paced = connector_for(emulator, base_url, rate_limit=RateLimit(4, 0.5))
    try:
        for i in range(8):
            await paced.send(batch(person(i)))
    finally:
        await paced.close()
    assert emulator.throttled == 0 and len(emulator.members()) == 8
    assert SPEC.rate_limit == RateLimit(300, 60.0)


async def test_bursting_past_the_quota_is_answered_429_and_retried(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    emulator.window = RateWindow(1, 0.3)
    unpaced = connector_for(emulator, base_url)
    try:
        await unpaced.send(batch(person(1)))
        with pytest.raises(TransientError) as throttled:
            await unpaced.send(batch(person(2)))
        result = await deliver(
            unpaced, batch(person(3)), RetryPolicy(attempts=6, initial_delay=0.1, max_delay=0.3)
        )
    finally:
        await unpaced.close()
    assert "429" in str(throttled.value) and "RESOURCE_EXHAUSTED" in str(throttled.value)
    assert throttled.value.retry_after is None  # Google sends no Retry-After
    assert result.accepted == ("3",) and emulator.throttled >= 2


async def test_the_emulator_refuses_what_the_api_refuses(
    emulator: GoogleAdsEmulator, base_url: str, connector: GoogleAdsConnector
) -> None:
    good = connector.body(Operation.add, [[{"emailAddress": sha("x@example.com")}]])
    auth = {"Authorization": f"Bearer {emulator.token}"}
    url = f"{base_url}/v1/audienceMembers:ingest"
    async with httpx.AsyncClient(headers=auth) as client:
        unknown = await client.post(url, json={**good, "partialFailure": True})
        too_many = await client.post(
            url, json={**good, "audienceMembers": good["audienceMembers"] * 10_001}
        )
        clear_text = await client.post(
            url,
            json={
                **good,
                "audienceMembers": [
                    {"userData": {"userIdentifiers": [{"emailAddress": "x@example.com"}]}}
                ],
            },
        )
        consent_on_remove = await client.post(f"{base_url}/v1/audienceMembers:remove", json=good)
        ok = await client.post(url, json=good)
    assert unknown.status_code == 400
    assert 'Unknown name "partialFailure"' in unknown.json()["error"]["message"]
    assert too_many.status_code == 400
    assert too_many.json()["error"]["details"][0]["reason"] == "TOO_MANY_AUDIENCE_MEMBERS"
    violation = clear_text.json()["error"]["details"][1]["fieldViolations"][0]
    assert violation["reason"] == "INVALID_SHA256_FORMAT"
    assert violation["field"].startswith("audience_members.audience_members[0]")
    assert consent_on_remove.status_code == 400  # termsOfService is not a remove field
    assert ok.status_code == 200 and "requestId" in ok.json()


# --- credentials that outlive an access token (OAuth client and refresh token) -----------


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


def refreshing_connector(config: dict[str, Any]) -> GoogleAdsConnector:
    options = BuildOptions(policy=allow_all, account=f"test-{uuid.uuid4()}")
    return GoogleAdsConnector(config, options, rate_limit=None)


async def test_access_tokens_come_from_the_refresh_token_and_are_reused(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    connector = refreshing_connector(refresh_config(emulator, base_url))
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
    # Within a minute of its expiry from the start: each call renews it first, while Google
    # would still take it.
    emulator.token_lifetime = 60
    connector = refreshing_connector(refresh_config(emulator, base_url))
    try:
        await connector.send(batch(person(1)))
        await connector.send(batch(person(2)))
    finally:
        await connector.close()
    assert len(emulator.token_requests) == 2
    assert [entry.status for entry in emulator.log] == [200, 200]  # no 401 on the way


async def test_a_refused_token_is_renewed_once_for_concurrent_requests(
    emulator: GoogleAdsEmulator, base_url: str
) -> None:
    connector = refreshing_connector(refresh_config(emulator, base_url))
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
        connector = refreshing_connector(config)
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
