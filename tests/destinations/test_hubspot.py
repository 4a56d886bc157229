"""The HubSpot connector against its emulator: the exact requests, per-contact refusals in a 207,
exits by email, archiving, the list check, and pacing within the rolling window."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

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
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.hubspot import SPEC, HubSpotConnector, property_value
from app.destinations.spec import BuildOptions, RateLimit
from models.enums import OnExit
from tests.emulators.base import RateWindow, Scripted
from tests.emulators.hubspot import HubSpotEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=1.0)
UPSERT = "/crm/objects/2026-03/contacts/batch/upsert"


@pytest.fixture
def emulator() -> HubSpotEmulator:
    return HubSpotEmulator()


@pytest.fixture
def base_url(emulator: HubSpotEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def build(
    emulator: HubSpotEmulator,
    base_url: str,
    *,
    on_exit: OnExit = OnExit.remove,
    rate_limit: RateLimit | None = None,
    **config: Any,
) -> HubSpotConnector:
    settings = {"base_url": base_url, "access_token": emulator.token, "list_id": emulator.list_id}
    options = BuildOptions(policy=allow_all, on_exit=on_exit, account=uuid.uuid4().hex)
    return HubSpotConnector({**settings, **config}, options, rate_limit=rate_limit)


@pytest.fixture
async def connector(emulator: HubSpotEmulator, base_url: str) -> AsyncIterator[HubSpotConnector]:
    connector = build(emulator, base_url)
    yield connector
    await connector.close()


def batch(operation: Operation, *records: Record) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


def person(key: int, **fields: Any) -> Record:
    return Record(str(key), {"email": f"p{key}@example.com", **fields})


def writes(emulator: HubSpotEmulator) -> list[tuple[str, str, Any]]:
    return [(m, p, body) for m, p, body in emulator.seen if m != "GET"]


async def test_adds_upsert_by_email_then_join_the_list_by_record_id(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    prepared = SPEC.prepare(
        {"email": "  Ada.L@Example.COM ", "firstname": " Ada ", "plan": "pro", "ltv": 1200.0},
        None,
    )
    result = await connector.send(batch(Operation.add, Record("1", prepared), person(2, plan=None)))
    assert result.accepted == ("1", "2") and not result.rejected
    [(_, upsert, body), (method, join, ids)] = writes(emulator)
    assert upsert == UPSERT
    assert body == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ada.l@example.com",
                "properties": {"firstname": "Ada", "plan": "pro", "ltv": "1200"},
                "objectWriteTraceId": "0",
            },
            {
                "idProperty": "email",
                "id": "p2@example.com",
                "properties": {"plan": ""},
                "objectWriteTraceId": "1",
            },
        ]
    }
    assert (method, join, ids) == (
        "PUT",
        "/crm/lists/2026-03/4242/memberships/add",
        ["1001", "1002"],
    )
    held = emulator.members()
    assert set(held) == {"ada.l@example.com", "p2@example.com"}
    assert held["ada.l@example.com"]["ltv"] == "1200" and "plan" not in held["p2@example.com"]


async def test_an_update_overwrites_properties_and_clears_empty_ones(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    await connector.send(batch(Operation.add, person(1, plan="pro", firstname="Ada")))
    await connector.send(batch(Operation.update, person(1, plan="enterprise", firstname=None)))
    stored = emulator.members()["p1@example.com"]
    assert stored["plan"] == "enterprise" and "firstname" not in stored
    assert len(emulator.contacts) == 1  # the same contact, found by its email


async def test_members_sharing_an_email_go_as_one_input(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    twins = (Record("1", {"email": "team@example.com", "plan": "basic"}),
             Record("2", {"email": "team@example.com", "plan": "pro"}))  # fmt: skip
    result = await connector.send(batch(Operation.add, *twins, person(3)))
    assert result.accepted == ("1", "2", "3") and not result.rejected
    [(_, _, upsert), (_, _, joined)] = writes(emulator)
    assert [(i["id"], i["objectWriteTraceId"]) for i in upsert["inputs"]] == [
        ("team@example.com", "1"),
        ("p3@example.com", "2"),
    ]
    assert joined == ["1001", "1002"]
    assert emulator.members()["team@example.com"]["plan"] == "pro"


async def test_contacts_refused_in_a_207_are_rejected_and_never_listed(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    emulator.reject.add("p2@example.com")
    result = await connector.send(
        batch(Operation.add, person(1), person(2), person(3, favourite_colour="teal"))
    )
    assert result.accepted == ("1",)
    reasons = dict(result.rejected)
    assert set(reasons) == {"2", "3"}
    assert reasons["2"].startswith("HubSpot refused the contact (VALIDATION_ERROR)")
    assert "PROPERTY_DOESNT_EXIST" in reasons["3"] and "favourite_colour" in reasons["3"]
    assert emulator.log[0].status == 207
    assert writes(emulator)[1][2] == ["1001"]  # only the accepted contact joins the list
    assert set(emulator.members()) == {"p1@example.com"}


async def test_a_request_refused_whole_is_bisected_to_the_contact_at_fault(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    emulator.poison.add("p3@example.com")
    result = await deliver(connector, batch(Operation.add, *map(person, range(1, 5))), FAST)
    assert sorted(result.accepted) == ["1", "2", "4"]
    assert [key for key, _ in result.rejected] == ["3"]
    assert "HubSpot refused the request (400)" in result.rejected[0][1]


async def test_exits_leave_the_list_by_the_email_they_were_sent_under(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    await connector.send(batch(Operation.add, person(1), person(2)))
    emulator.seen.clear()
    gone = Record("9", {"member_key": "9", "email": "never-synced@example.com"})
    exits = batch(
        Operation.remove, Record("1", {"member_key": "1", "email": "p1@example.com"}), gone
    )
    result = await connector.send(exits)
    assert result.accepted == ("1", "9") and not result.rejected
    [(_, read, lookup), (method, leave, ids)] = writes(emulator)
    assert read == "/crm/objects/2026-03/contacts/batch/read"
    assert lookup == {
        "idProperty": "email",
        "inputs": [{"id": "never-synced@example.com"}, {"id": "p1@example.com"}],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }
    assert (method, leave, ids) == ("PUT", "/crm/lists/2026-03/4242/memberships/remove", ["1001"])
    assert set(emulator.members()) == {"p2@example.com"}
    assert not emulator.contacts["1001"].archived  # the contact stays in the CRM


async def test_an_exit_without_a_kept_email_is_rejected_not_assumed(
    connector: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    result = await connector.send(batch(Operation.remove, Record("5", {"member_key": "5"})))
    assert result.accepted == () and result.rejected[0][0] == "5"
    assert emulator.seen == []


async def test_delete_record_archives_the_contacts_that_exit(
    emulator: HubSpotEmulator, base_url: str
) -> None:
    connector = build(emulator, base_url, on_exit=OnExit.delete_record)
    try:
        await connector.send(batch(Operation.add, person(1), person(2)))
        exits = batch(Operation.remove, Record("2", {"member_key": "2", "email": "p2@example.com"}))
        result = await connector.send(exits)
    finally:
        await connector.close()
    assert result.accepted == ("2",)
    assert writes(emulator)[-1] == (
        "POST",
        "/crm/objects/2026-03/contacts/batch/archive",
        {"inputs": [{"id": "1002"}]},
    )
    assert emulator.contacts["1002"].archived and set(emulator.members()) == {"p1@example.com"}


async def test_check_reads_the_list_and_refuses_what_cannot_hold_the_audience(
    emulator: HubSpotEmulator, base_url: str
) -> None:
    good = build(emulator, base_url)
    missing = build(emulator, base_url, list_id="999")
    refused = build(emulator, base_url, access_token="pat-na1-not-this-one")
    try:
        await good.check()
        assert emulator.seen == [("GET", "/crm/lists/2026-03/4242", None)]
        with pytest.raises(TerminalError, match="404"):
            await missing.check()
        with pytest.raises(AccessDenied) as denied:
            await refused.check()
        assert "pat-na1-not-this-one" not in str(denied.value)
        emulator.processing_type = "DYNAMIC"
        with pytest.raises(TerminalError, match="DYNAMIC"):
            await good.check()
    finally:
        for connector in (good, missing, refused):
            await connector.close()


async def test_pacing_keeps_every_request_inside_the_rolling_window(
    emulator: HubSpotEmulator, base_url: str
) -> None:
    emulator.window = RateWindow(10, 0.5)
    connector = build(emulator, base_url, rate_limit=RateLimit(10, 0.5))
    try:
        for key in range(1, 9):  # 16 requests: more than a window holds
            result = await deliver(connector, batch(Operation.add, person(key)), FAST)
            assert result.accepted == (str(key),)
    finally:
        await connector.close()
    assert emulator.throttled == 0 and len(emulator.log) == 16


async def test_a_429_waits_the_interval_hubspot_names(
    emulator: HubSpotEmulator, base_url: str
) -> None:
    emulator.window = RateWindow(4, 0.3)
    connector = build(emulator, base_url)  # no pacing: the window is hit
    started = time.monotonic()
    try:
        for key in range(1, 5):
            result = await deliver(connector, batch(Operation.add, person(key)), FAST)
            assert result.accepted == (str(key),) and not result.failed
    finally:
        await connector.close()
    assert emulator.throttled >= 1 and time.monotonic() - started >= 0.3
    throttled = next(entry for entry in emulator.log if entry.status == 429)
    assert throttled.items == 1


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        (Scripted(429), 10.0),  # no interval header: the ten-second rolling window
        (Scripted(429, {"X-HubSpot-RateLimit-Interval-Milliseconds": "2500"}), 2.5),
        (Scripted(429, {"Retry-After": "4"}), 4.0),
        (Scripted(423), 2.0),  # Locked: "a delay of at least 2 seconds"
        (Scripted(477, {"Retry-After": "60"}), 60.0),  # a data migration in progress
    ],
)
async def test_throttled_locked_and_migrating_answers_are_transient_with_their_wait(
    connector: HubSpotConnector, emulator: HubSpotEmulator, answer: Scripted, wait: float
) -> None:
    emulator.script.append(answer)
    with pytest.raises(TransientError) as raised:
        await connector.send(batch(Operation.add, person(1)))
    assert raised.value.retry_after == wait


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (7, "7"),
        (1200.0, "1200"),
        (12.5, "12.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("19.90"), "19.9"),
        (date(2024, 2, 29), "2024-02-29"),
        (datetime(2024, 2, 29, 8, 30, tzinfo=UTC), "2024-02-29T08:30:00+00:00"),
        ("pro", "pro"),
    ],
)
def test_property_values_are_hubspot_text(value: Any, text: str) -> None:
    assert property_value(value) == text
