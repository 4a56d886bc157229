"""The Klaviyo connector against its emulator: the exact import job it sends (normalised
identifiers, phone numbers in E.164 with `+`, location and properties, the list), the job
polled to its end, import errors as rejections, exits found by identifier and taken off the
list, each endpoint paced at its own limit, and `check()`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
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
from app.destinations.klaviyo import REVISION, SPEC, KlaviyoConnector
from app.destinations.spec import BuildOptions, RateLimit
from tests.emulators.base import RateWindow
from tests.emulators.klaviyo import KlaviyoEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=2.0)
QUICK_POLLS = (0.0, 0.01)


@pytest.fixture
def emulator() -> KlaviyoEmulator:
    return KlaviyoEmulator()


@pytest.fixture
def base_url(emulator: KlaviyoEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def connector_for(emulator: KlaviyoEmulator, base: str, **extra: Any) -> KlaviyoConnector:
    config = {"base_url": base, "api_key": emulator.token, "list_id": emulator.list_id}
    config |= {"default_phone_region": "US", **extra.pop("config", {})}
    options = BuildOptions(policy=allow_all, account=uuid.uuid4().hex)
    # Unpaced unless a test paces it: the pacing test shows the documented limits at work.
    return KlaviyoConnector(config, options, **{"poll_delays": QUICK_POLLS, "limits": {}, **extra})


def prepared(key: str, **payload: Any) -> Record:
    """A record as the engine hands it over: the payload normalised by the declaration."""
    return Record(key, SPEC.prepare(payload, "US"))


def batch(operation: Operation, *records: Record) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


def writes(emulator: KlaviyoEmulator, method: str) -> list[tuple[Any, ...]]:
    return [seen for seen in emulator.seen if seen[0] == method]


async def test_an_import_job_carries_normalised_profiles_into_the_list(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url)
    ada = prepared(
        "1",
        email="  Ada.Lovelace@Example.COM ",
        phone_number="(650) 253-0001",
        first_name=" Ada ",
        city="London",
        plan="pro",
        ltv=Decimal("12.50"),
        nothing=None,
    )
    try:
        result = await deliver(connector, batch(Operation.add, ada), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("1",) and not result.rejected
    [(_, path, _, headers, body)] = writes(emulator, "POST")
    assert path == "/api/profile-bulk-import-jobs"
    assert headers["authorization"] == f"Klaviyo-API-Key {emulator.token}"
    assert headers["revision"] == REVISION
    assert headers["content-type"] == "application/vnd.api+json"
    assert body == {
        "data": {
            "type": "profile-bulk-import-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "ada.lovelace@example.com",
                                "phone_number": "+16502530001",
                                "first_name": "Ada",
                                "location": {"city": "London"},
                                "properties": {"plan": "pro", "ltv": 12.5},
                            },
                        }
                    ]
                }
            },
            "relationships": {"lists": {"data": [{"type": "list", "id": emulator.list_id}]}},
        }
    }
    assert emulator.members()["ada.lovelace@example.com"]["plan"] == "pro"


async def test_the_job_is_polled_until_complete(emulator: KlaviyoEmulator, base_url: str) -> None:
    emulator.polls_before_complete = 2
    connector = connector_for(emulator, base_url)
    try:
        result = await connector.send(batch(Operation.add, prepared("1", email="a@example.com")))
    finally:
        await connector.close()
    polls = [s for s in emulator.seen if s[0] == "GET" and "/profile-bulk-import-jobs/" in s[1]]
    assert result.accepted == ("1",) and len(polls) == 3


async def test_a_job_that_does_not_finish_in_time_is_transient(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    emulator.polls_before_complete = 10_000
    connector = connector_for(emulator, base_url, poll_delays=(0.02,), job_timeout=0.1)
    try:
        with pytest.raises(TransientError, match="did not finish within"):
            await connector.send(batch(Operation.add, prepared("1", email="a@example.com")))
    finally:
        await connector.close()


async def test_import_errors_reject_their_rows_and_only_theirs(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    emulator.reject.add("b@example.com")
    records = (
        prepared("1", email="a@example.com", plan="pro"),
        prepared("2", email="b@example.com", plan="pro"),
        Record("3", {"email": "c@example.com", "phone_number": "650-253-0003"}),  # not E.164
        prepared("4", email="d@example.com"),
    )
    connector = connector_for(emulator, base_url)
    try:
        result = await deliver(connector, batch(Operation.add, *records), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("1", "4") and result.requests == 1
    reasons = dict(result.rejected)
    assert set(reasons) == {"2", "3"}
    assert "refused" in reasons["2"] and "Invalid phone number format" in reasons["3"]
    assert set(emulator.members()) == {"a@example.com", "d@example.com"}


async def test_failures_the_errors_do_not_name_refuse_the_request_and_are_bisected(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    """An import error without a pointer or payload cannot be pinned on a row: the batch is
    refused whole until bisection leaves the failing profile alone."""
    emulator.reject.add("c@example.com")
    original = emulator.create_job

    async def anonymous_errors(request: Any) -> Any:
        answer = await original(request)
        for job in emulator.jobs.values():
            for error in job.errors:
                error["attributes"].pop("source", None)
                error["attributes"].pop("original_payload", None)
        return answer

    emulator.create_job = anonymous_errors  # type: ignore[method-assign]
    records = [prepared(str(i), email=f"{c}@example.com") for i, c in enumerate("abcd", 1)]
    with serve_in_thread(emulator.app()) as base:
        connector = connector_for(emulator, base)
        try:
            result = await deliver(connector, batch(Operation.add, *records), FAST)
        finally:
            await connector.close()
    assert sorted(result.accepted) == ["1", "2", "4"]
    [(key, reason)] = result.rejected
    assert key == "3" and "failed 1 profile(s) it does not name" in reason


async def test_exits_are_found_by_identifier_and_leave_the_list(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url)
    joined = [
        prepared("1", email="a@example.com"),
        prepared("2", email="b@example.com"),
        prepared("3", phone_number="+16502530003"),
    ]
    leaving = [
        Record("2", {"member_key": "2", "email": "b@example.com"}),
        Record("3", {"member_key": "3", "phone_number": "+16502530003"}),
        Record("9", {"member_key": "9", "email": "never-sent@example.com"}),
    ]
    try:
        await deliver(connector, batch(Operation.add, *joined), FAST)
        result = await deliver(connector, batch(Operation.remove, *leaving), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("2", "3", "9") and not result.rejected
    assert set(emulator.members()) == {"a@example.com"}
    assert len(emulator.profiles) == 3  # the profiles (and their consent) stay
    lookups = [s[2]["filter"] for s in emulator.seen if s[1] == "/api/profiles"]
    assert lookups == [
        'any(email,["b@example.com","never-sent@example.com"])',
        'any(phone_number,["+16502530003"])',
    ]
    [(_, path, _, _, body)] = writes(emulator, "DELETE")
    assert path == f"/api/lists/{emulator.list_id}/relationships/profiles"
    removed = {emulator.profiles[item["id"]].identity for item in body["data"]}
    assert removed == {"b@example.com", "+16502530003"}


async def test_each_endpoint_is_paced_at_its_own_limit(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    """Imports limited to 2 a second at both ends: four batches take their time and meet no
    429; without the pacing the emulator throttles, and delivery honours its Retry-After."""
    emulator.windows["import"] = [RateWindow(2, 1.0)]
    paced = connector_for(emulator, base_url, limits={"import": RateLimit(2, 1.0)})
    started = time.monotonic()
    try:
        for i in range(4):
            record = prepared(str(i), email=f"p{i}@example.com")
            assert (await deliver(paced, batch(Operation.add, record), FAST)).accepted
    finally:
        await paced.close()
    assert time.monotonic() - started >= 1.4 and emulator.throttled == 0

    emulator.windows["import"] = [RateWindow(2, 1.0)]
    unpaced = connector_for(emulator, base_url, limits={})
    try:
        for i in range(4, 8):
            record = prepared(str(i), email=f"p{i}@example.com")
            assert (await deliver(unpaced, batch(Operation.add, record), FAST)).accepted
    finally:
        await unpaced.close()
    assert emulator.throttled >= 1
    throttled = [entry for entry in emulator.log if entry.status == 429]
    assert throttled and all(entry.path == "/api/profile-bulk-import-jobs" for entry in throttled)


async def test_check_reads_the_list_and_refuses_a_bad_key_without_echoing_it(
    emulator: KlaviyoEmulator, base_url: str
) -> None:
    good = connector_for(emulator, base_url)
    bad = connector_for(emulator, base_url, config={"api_key": "pk_wrong_key_0123456789"})
    missing = connector_for(emulator, base_url, config={"list_id": "NoSuch"})
    try:
        await good.check()
        with pytest.raises(AccessDenied) as refused:
            await bad.check()
        with pytest.raises(TerminalError, match="404"):
            await missing.check()
    finally:
        for connector in (good, bad, missing):
            await connector.close()
    assert "pk_wrong_key_0123456789" not in str(refused.value)
    assert "Missing or invalid private key" in str(refused.value)


def test_the_declaration() -> None:
    assert SPEC.max_batch_size == 10_000 and SPEC.rate_limit == RateLimit(150, 60.0)
    assert SPEC.needs_identifier and SPEC.custom_fields
    assert SPEC.public_config_fields == {"base_url", "default_phone_region", "list_id"}
    assert {f.name for f in SPEC.fields if f.identifier} == {"email", "phone_number", "external_id"}
    assert SPEC.check_mapping(["first_name", "plan"]) == [
        (-1, "klaviyo needs one of email, phone_number, external_id")
    ]
