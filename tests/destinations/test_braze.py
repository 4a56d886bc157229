"""The Braze connector against its emulator: the exact `/users/track` bodies, membership as an
attribute and as a subscription group, non-fatal errors inside a 201, the credential check,
and pacing within the 3-second window."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.destinations.address_guard import allow_all
from app.destinations.base import AccessDenied, Batch, Operation, Record, TerminalError
from app.destinations.braze import SPEC, BrazeConfig, BrazeConnector, attribute_value
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.spec import BuildOptions, RateLimit
from tests.emulators.base import RateWindow
from tests.emulators.braze import BrazeEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=2.0)
GROUP = "8b1f3a0e-5c2d-4e6f-9a7b-0c1d2e3f4a5b"
ATTRIBUTE = "in_signalsmith_audience"


@pytest.fixture
def emulator() -> BrazeEmulator:
    return BrazeEmulator()


@pytest.fixture
def base_url(emulator: BrazeEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def build(
    emulator: BrazeEmulator, base_url: str, *, rate_limit: RateLimit | None = None, **config: Any
) -> BrazeConnector:
    settings = {
        "base_url": base_url,
        "api_key": emulator.token,
        "membership_attribute": emulator.membership_attribute,
        **config,
    }
    options = BuildOptions(policy=allow_all, account=uuid.uuid4().hex)
    return BrazeConnector(
        {k: v for k, v in settings.items() if v is not None}, options, rate_limit=rate_limit
    )


@pytest.fixture
async def connector(emulator: BrazeEmulator, base_url: str) -> AsyncIterator[BrazeConnector]:
    connector = build(emulator, base_url)
    yield connector
    await connector.close()


def batch(operation: Operation, *records: Record) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


def user(key: int, **fields: Any) -> Record:
    return Record(str(key), {"external_id": str(key), **fields})


def test_identifiers_are_normalised_as_braze_matches_them() -> None:
    prepared = SPEC.prepare(
        {"external_id": 42, "email": " Ada@Example.COM ", "phone": "(650) 253-0000",
         "country": "us", "plan": "pro"},
        "US",
    )  # fmt: skip
    assert prepared == {
        "external_id": "42",
        "email": "ada@example.com",
        "phone": "+16502530000",  # E.164, with its +
        "country": "US",
        "plan": "pro",
    }
    assert SPEC.identifiers(prepared) == {
        "external_id": "42",
        "email": "ada@example.com",
        "phone": "+16502530000",
    }


async def test_adds_send_every_attribute_and_set_the_membership_attribute(
    connector: BrazeConnector, emulator: BrazeEmulator
) -> None:
    fields = {"email": "ada@example.com", "plan": "pro", "ltv": Decimal("1200.00"), "vip": True}
    result = await connector.send(batch(Operation.add, user(1, **fields), user(2, score=2.5)))
    assert result.accepted == ("1", "2") and not result.rejected
    assert emulator.seen == [
        {
            "attributes": [
                {
                    "external_id": "1",
                    "email": "ada@example.com",
                    "plan": "pro",
                    "ltv": 1200,
                    "vip": True,
                    ATTRIBUTE: True,
                },
                {"external_id": "2", "score": 2.5, ATTRIBUTE: True},
            ]
        }
    ]
    assert set(emulator.members()) == {"1", "2"}
    assert emulator.log[0].status == 201


async def test_exits_send_only_the_identifier_and_clear_the_membership(
    connector: BrazeConnector, emulator: BrazeEmulator
) -> None:
    await connector.send(batch(Operation.add, user(1, plan="pro"), user(2)))
    await connector.send(batch(Operation.add, Record("3", {"email": "only@example.com"})))
    exits = batch(
        Operation.remove,
        Record("1", {"member_key": "1", "external_id": "1", "email": "ada@example.com"}),
        Record("3", {"member_key": "3", "email": "only@example.com"}),
    )
    result = await connector.send(exits)
    assert result.accepted == ("1", "3")
    assert emulator.seen[-1] == {
        "attributes": [
            {"external_id": "1", ATTRIBUTE: False},
            {"email": "only@example.com", ATTRIBUTE: False},
        ]
    }
    assert set(emulator.members()) == {"2"}
    assert emulator.users["1"] == {"external_id": "1", "plan": "pro", ATTRIBUTE: False}


async def test_an_exit_with_no_identifier_kept_is_rejected_without_a_request(
    connector: BrazeConnector, emulator: BrazeEmulator
) -> None:
    result = await connector.send(batch(Operation.remove, Record("7", {"member_key": "7"})))
    assert result.accepted == () and result.rejected[0][0] == "7"
    assert emulator.seen == []


async def test_a_subscription_group_follows_the_audience(
    emulator: BrazeEmulator, base_url: str
) -> None:
    connector = build(emulator, base_url, membership_attribute=None, subscription_group_id=GROUP)
    try:
        await connector.send(batch(Operation.add, user(1), user(2)))
        assert emulator.seen[0]["attributes"][0] == {
            "external_id": "1",
            "subscription_groups": [
                {"subscription_group_id": GROUP, "subscription_state": "subscribed"}
            ],
        }
        assert emulator.subscribed(GROUP) == {"1", "2"}
        await connector.send(
            batch(Operation.remove, Record("2", {"member_key": "2", "external_id": "2"}))
        )
    finally:
        await connector.close()
    assert emulator.subscribed(GROUP) == {"1"}
    assert emulator.seen[-1]["attributes"][0]["subscription_groups"][0] == {
        "subscription_group_id": GROUP,
        "subscription_state": "unsubscribed",
    }


async def test_objects_refused_inside_a_201_are_rejected_with_brazes_words(
    connector: BrazeConnector, emulator: BrazeEmulator
) -> None:
    emulator.reject.add("2")
    result = await connector.send(
        batch(Operation.add, user(1), user(2), user(3, country="USA"), user(4))
    )
    assert result.accepted == ("1", "4")
    reasons = dict(result.rejected)
    assert reasons["2"] == "Braze refused the user: user 2 was refused"
    assert reasons["3"] == "Braze refused the user: 'country' is not valid"
    assert emulator.log[0].status == 201 and set(emulator.members()) == {"1", "4"}


async def test_a_fatal_error_refuses_the_request_whole(
    connector: BrazeConnector, emulator: BrazeEmulator
) -> None:
    too_many = batch(Operation.add, *(user(i) for i in range(76)))
    with pytest.raises(TerminalError, match="Max Input Length Exceeded"):
        await connector.send(too_many)
    emulator.poison.add("3")
    result = await deliver(connector, batch(Operation.add, *map(user, range(1, 5))), FAST)
    assert sorted(result.accepted) == ["1", "2", "4"] and [k for k, _ in result.rejected] == ["3"]


async def test_check_proves_the_key_and_creates_no_user(
    emulator: BrazeEmulator, base_url: str
) -> None:
    good = build(emulator, base_url)
    refused = build(emulator, base_url, api_key="d41d8cd9-wrong-rest-key")
    try:
        await good.check()
        assert emulator.seen == [
            {
                "attributes": [
                    {"external_id": "signalsmith-connection-check", "_update_existing_only": True}
                ]
            }
        ]
        assert emulator.users == {}
        with pytest.raises(AccessDenied) as denied:
            await refused.check()
    finally:
        await good.close()
        await refused.close()
    # Braze echoes the key it refused; the connector's message never does.
    assert "Invalid API key: [redacted]" in str(denied.value)
    assert "d41d8cd9-wrong-rest-key" not in str(denied.value)


async def test_pacing_keeps_every_request_inside_the_window(
    emulator: BrazeEmulator, base_url: str
) -> None:
    emulator.window = RateWindow(15, 0.2)
    connector = build(emulator, base_url, rate_limit=RateLimit(15, 0.2))
    try:
        for key in range(30):
            result = await deliver(connector, batch(Operation.add, user(key)), FAST)
            assert result.accepted == (str(key),)
    finally:
        await connector.close()
    assert emulator.throttled == 0 and len(emulator.log) == 30


async def test_a_429_waits_until_the_window_resets(emulator: BrazeEmulator, base_url: str) -> None:
    emulator.window = RateWindow(3, 0.2)
    connector = build(emulator, base_url)  # no pacing: the window is hit
    try:
        results = [await deliver(connector, batch(Operation.add, user(k)), FAST) for k in range(5)]
    finally:
        await connector.close()
    assert all(r.accepted and not r.failed for r in results)
    assert emulator.throttled >= 1 and set(emulator.members()) == {str(k) for k in range(5)}


def test_the_config_names_how_membership_is_kept() -> None:
    base = {"base_url": "https://rest.iad-01.braze.com", "api_key": "k"}
    with pytest.raises(ValidationError, match="membership_attribute, subscription_group_id"):
        BrazeConfig.model_validate(base)
    with pytest.raises(ValidationError):
        BrazeConfig.model_validate({**base, "membership_attribute": "$bad"})
    assert BrazeConfig.model_validate({**base, "subscription_group_id": GROUP})


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (1200.0, 1200),
        (2.5, 2.5),
        (Decimal("1200.00"), 1200),
        (Decimal("19.90"), 19.9),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), "2024-02-29T08:30:00+00:00"),
        ("pro", "pro"),
    ],
)
def test_attribute_values_keep_their_json_type(value: Any, sent: Any) -> None:
    assert attribute_value(value) == sent
