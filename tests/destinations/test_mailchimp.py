"""The Mailchimp connector against its emulator: the batch call it sends (basic auth with the
key, `update_existing`, status and merge fields), per-member errors inside a 200 answer as
rejections (and members the answer forgets), exits unsubscribed or archived, the data center
read from the key, and `check()`."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from app.destinations.address_guard import allow_all
from app.destinations.base import AccessDenied, Batch, Operation, Record, TerminalError
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.mailchimp import SPEC, MailchimpConfig, MailchimpConnector
from app.destinations.spec import BuildOptions
from app.validation import invalid_from
from models.enums import OnExit
from tests.emulators.base import Scripted
from tests.emulators.mailchimp import MailchimpEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)


@pytest.fixture
def emulator() -> MailchimpEmulator:
    return MailchimpEmulator()


@pytest.fixture
def base_url(emulator: MailchimpEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def connector_for(
    emulator: MailchimpEmulator, base: str, on_exit: OnExit = OnExit.remove, **config: Any
) -> MailchimpConnector:
    settings = {"base_url": base, "api_key": emulator.token, "list_id": emulator.list_id}
    options = BuildOptions(policy=allow_all, on_exit=on_exit)
    return MailchimpConnector({**settings, **config}, options)


def prepared(key: str, **payload: Any) -> Record:
    return Record(key, SPEC.prepare(payload, None))


def batch(operation: Operation, *records: Record) -> Batch:
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


def leaving(key: str, email: str) -> Record:
    return Record(key, {"member_key": key, "email_address": email})


async def test_members_are_subscribed_in_one_batch_call(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url)
    records = (
        prepared("1", email_address=" Ada@Example.COM ", FNAME=" Ada ", PLAN="pro", LTV=12.0),
        prepared("2", email_address="bob@example.com", LNAME=None, PLAN="basic"),
    )
    emulator.merge_fields["LTV"] = False
    try:
        result = await deliver(connector, batch(Operation.add, *records), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("1", "2") and result.requests == 1
    [(method, path, query, headers, body)] = emulator.seen
    assert (method, path, query) == ("POST", f"/3.0/lists/{emulator.list_id}", {})
    scheme, _, encoded = headers["authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(encoded).decode().endswith(f":{emulator.token}")
    assert body == {
        "members": [
            {
                "email_address": "ada@example.com",
                "status": "subscribed",
                "merge_fields": {"FNAME": "Ada", "PLAN": "pro", "LTV": "12"},
            },
            {
                "email_address": "bob@example.com",
                "status": "subscribed",
                "merge_fields": {"PLAN": "basic"},
            },
        ],
        "update_existing": True,
    }
    assert emulator.members()["ada@example.com"] == {
        "status": "subscribed",
        "FNAME": "Ada",
        "PLAN": "pro",
        "LTV": "12",
    }


async def test_errors_inside_the_200_are_rejections_never_silent_success(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    emulator.reject.add("b@example.com")
    connector = connector_for(emulator, base_url, status="pending")
    records = (
        prepared("1", email_address="a@example.com"),
        prepared("2", email_address="b@example.com"),
        prepared("3", email_address="c@example.com", NOPE="x"),
        Record("4", {"email_address": "d@example"}),  # never normalised: Mailchimp refuses it
    )
    try:
        result = await deliver(connector, batch(Operation.add, *records), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("1",) and result.requests == 1
    reasons = dict(result.rejected)
    assert "not allowing more signups" in reasons["2"]
    assert reasons["3"] == (
        "Your merge fields were invalid.; NOPE: This merge field does not exist in the audience"
    )
    assert "looks fake or invalid" in reasons["4"]
    assert emulator.members() == {"a@example.com": {"status": "pending"}}


async def test_a_member_the_answer_does_not_mention_is_rejected(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    answer = {"new_members": [{"email_address": "a@example.com"}], "updated_members": []}
    emulator.script.append(Scripted(200, body={**answer, "errors": []}))
    connector = connector_for(emulator, base_url)
    records = (prepared("1", email_address="a@example.com"), prepared("2", email_address="b@x.io"))
    try:
        result = await connector.send(batch(Operation.add, *records))
    finally:
        await connector.close()
    assert result.accepted == ("1",)
    assert result.rejected == (("2", "Mailchimp's answer did not mention this member"),)


async def test_two_rows_with_one_address_are_one_member(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url)
    records = (
        prepared("1", email_address="same@example.com"),
        prepared("2", email_address="SAME@example.com"),
    )
    try:
        result = await connector.send(batch(Operation.add, *records))
    finally:
        await connector.close()
    assert result.accepted == ("1", "2")
    assert len(emulator.seen[0][4]["members"]) == 1


async def test_exits_are_unsubscribed_and_come_back_subscribed(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url)
    try:
        joined = prepared("1", email_address="a@example.com", PLAN="pro")
        await connector.send(batch(Operation.add, joined))
        left = await connector.send(batch(Operation.remove, leaving("1", "a@example.com")))
        assert left.accepted == ("1",) and emulator.members() == {}
        assert emulator.seen[-1][4] == {
            "members": [{"email_address": "a@example.com", "status": "unsubscribed"}],
            "update_existing": True,
        }
        await connector.send(batch(Operation.add, prepared("1", email_address="a@example.com")))
    finally:
        await connector.close()
    assert emulator.members() == {"a@example.com": {"status": "subscribed", "PLAN": "pro"}}


async def test_delete_record_archives_each_member_a_few_at_a_time(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url, on_exit=OnExit.delete_record)
    joined = [prepared(str(i), email_address=f"p{i}@example.com") for i in range(12)]
    exits = [leaving(str(i), f"p{i}@example.com") for i in range(12)]
    exits.append(leaving("99", "never-there@example.com"))
    try:
        await connector.send(batch(Operation.add, *joined))
        emulator.poison.add("p3@example.com")  # Mailchimp will not archive this one
        emulator.script.extend(Scripted(200, delay=0.05) for _ in range(13))  # slow answers
        result = await connector.send(batch(Operation.remove, *exits))
    finally:
        await connector.close()
    assert sorted(result.accepted, key=int) == [str(i) for i in range(12) if i != 3] + ["99"]
    [(key, reason)] = result.rejected
    assert key == "3" and "405" in reason and "cannot be removed" in reason
    assert set(emulator.members()) == {"p3@example.com"}
    deletes = [s for s in emulator.seen if s[0] == "DELETE"]
    expected = hashlib.md5(b"p0@example.com", usedforsecurity=False).hexdigest()
    assert f"/3.0/lists/{emulator.list_id}/members/{expected}" in {s[1] for s in deletes}
    assert len(deletes) == 13 and 1 < emulator.peak_in_flight <= 4


async def test_check_reads_the_audience_and_refuses_a_bad_key_without_echoing_it(
    emulator: MailchimpEmulator, base_url: str
) -> None:
    wrong = "00000000000000000000000000000000-us21"
    good = connector_for(emulator, base_url)
    bad = connector_for(emulator, base_url, api_key=wrong)
    missing = connector_for(emulator, base_url, list_id="nosuchlist")
    try:
        await good.check()
        with pytest.raises(AccessDenied) as refused:
            await bad.check()
        with pytest.raises(TerminalError, match="404"):
            await missing.check()
    finally:
        for connector in (good, bad, missing):
            await connector.close()
    encoded = base64.b64encode(f"signalsmith:{wrong}".encode()).decode()
    assert wrong not in str(refused.value) and encoded not in str(refused.value)
    assert "API Key Invalid" in str(refused.value)


def test_the_data_center_comes_from_the_key() -> None:
    config = MailchimpConfig.model_validate({"api_key": "abc123-us21", "list_id": "a1b2c3d4e5"})
    assert config.base_url == "https://us21.api.mailchimp.com"
    assert config.status == "subscribed"
    with pytest.raises(ValidationError) as refused:
        MailchimpConfig.model_validate({"api_key": "no-data-center-here!", "list_id": "x"})
    answer = invalid_from(refused.value, prefix="config")
    assert "does not end in its data center" in answer.message
    assert "no-data-center-here!" not in answer.message


def test_the_declaration() -> None:
    assert SPEC.max_batch_size == 500 and SPEC.default_batch_size == 500
    assert SPEC.rate_limit is None  # Mailchimp documents connections, not a request rate
    assert SPEC.on_exit == frozenset({OnExit.remove, OnExit.delete_record})
    assert SPEC.public_config_fields == {"base_url", "default_phone_region", "list_id", "status"}
    assert SPEC.check_mapping(["FNAME"]) == [(-1, "mailchimp needs one of email_address")]
