"""The Meta connector against the Custom Audience users-edge emulator: the exact requests
(multi-key schema, Meta's normalisation before hashing, sessions, the token out of the URL),
per-row refusals inside a 200, Graph error codes inside 400s, throttling, and the emulator's
own strictness."""

from __future__ import annotations

import hashlib
import json
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
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.meta import SPEC, MetaConnector
from app.destinations.spec import BuildOptions
from tests.emulators.base import RateWindow, Scripted
from tests.emulators.meta import MetaEmulator
from tests.servers import serve_in_thread

FAST = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.5)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emulator() -> MetaEmulator:
    return MetaEmulator()


@pytest.fixture
def base_url(emulator: MetaEmulator) -> Iterator[str]:
    with serve_in_thread(emulator.app()) as base:
        yield base


def connector_for(emulator: MetaEmulator, base: str, **extra: Any) -> MetaConnector:
    config = {
        "base_url": base,
        "access_token": emulator.token,
        "custom_audience_id": emulator.audience_id,
        "default_phone_region": "US",
        **extra,
    }
    return MetaConnector(config, BuildOptions(policy=allow_all, account=f"test-{uuid.uuid4()}"))


@pytest.fixture
async def connector(emulator: MetaEmulator, base_url: str) -> AsyncIterator[MetaConnector]:
    connector = connector_for(emulator, base_url)
    yield connector
    await connector.close()


def person(i: int, **raw: Any) -> Record:
    values = {
        "email": f" Member.{i}@Example.com ",
        "phone": f"(650) 253-{i:04d}",
        "first_name": " Mary-Jane ",
        "last_name": "O'Neil",
        "country": "US",
        "zip": "94043-1351",
        **raw,
    }
    return Record(str(i), SPEC.prepare({k: v for k, v in values.items() if v is not None}, "US"))


def batch(
    *records: Record, operation: Operation = Operation.add, run: uuid.UUID | None = None
) -> Batch:
    return Batch(uuid.uuid4(), run or uuid.uuid4(), operation, records)


async def test_adds_post_the_multi_key_schema_hashed_after_meta_normalisation(
    emulator: MetaEmulator, base_url: str
) -> None:
    connector = connector_for(emulator, base_url, api_version="v24.0")
    try:
        result = await connector.send(batch(person(1), person(2, phone=None)))
    finally:
        await connector.close()
    assert result.accepted == ("1", "2") and not result.rejected
    [(method, body)] = emulator.bodies
    assert method == "POST" and emulator.log[0].path == f"/v24.0/{emulator.audience_id}/users"
    assert body["payload"]["schema"] == ["EMAIL", "PHONE", "FN", "LN", "COUNTRY", "ZIP"]
    assert body["payload"]["data"] == [
        [
            sha("member.1@example.com"),
            sha("16502530001"),  # digits with the country code, no +
            sha("maryjane"),  # letters only
            sha("oneil"),
            sha("us"),  # lower-case
            sha("94043"),  # US: five digits
        ],
        [sha("member.2@example.com"), "", sha("maryjane"), sha("oneil"), sha("us"), sha("94043")],
    ]
    headers = emulator.headers[0]
    assert headers["authorization"] == f"Bearer {emulator.token}"
    assert all(emulator.token not in entry.path for entry in emulator.log)
    assert set(emulator.members()) == {sha("member.1@example.com"), sha("member.2@example.com")}


async def test_one_session_per_run_and_operation_counts_its_batches(
    emulator: MetaEmulator, connector: MetaConnector
) -> None:
    run = uuid.uuid4()
    await connector.send(batch(person(1), person(2), run=run))
    await connector.send(batch(person(3), run=run))
    leaving = Record("2", {"member_key": "2", **SPEC.identifiers(person(2).fields)})
    removed = await connector.send(batch(leaving, operation=Operation.remove, run=run))
    await connector.send(batch(person(4)))  # another run
    first, second, removal, other = emulator.sessions
    assert first["session_id"] == second["session_id"]
    assert (first["batch_seq"], second["batch_seq"]) == (1, 2)
    assert removal["session_id"] not in (first["session_id"], other["session_id"])
    assert removal["batch_seq"] == 1 and other["batch_seq"] == 1
    assert other["session_id"] != first["session_id"]
    assert all(s["last_batch_flag"] is False for s in emulator.sessions)
    assert removed.accepted == ("2",)
    method, body = emulator.bodies[2]
    assert method == "DELETE"
    assert body["payload"] == {
        "schema": ["EMAIL", "PHONE"],
        "data": [[sha("member.2@example.com"), sha("16502530002")]],
    }
    assert sha("member.2@example.com") not in emulator.members()


async def test_invalid_entry_samples_become_rejections_and_the_rest_is_accepted(
    emulator: MetaEmulator, connector: MetaConnector
) -> None:
    emulator.reject = {sha("member.2@example.com")}
    malformed = Record("9", {"email": "NOT-A-HASH"})  # a value Meta cannot read
    result = await connector.send(batch(person(1), person(2), malformed, person(3)))
    assert result.accepted == ("1", "3")
    assert dict(result.rejected) == {
        "2": "meta refused the entry: The entry was refused",
        "9": "meta refused the entry: Invalid EMAIL: not a lower-case SHA-256 hash",
    }
    assert [(e.items, e.status) for e in emulator.log] == [(4, 200)]


async def test_graph_error_codes_decide_what_a_400_means(
    emulator: MetaEmulator, base_url: str, connector: MetaConnector
) -> None:
    bad = connector_for(emulator, base_url, access_token="EAAB-wrong-token-value")
    elsewhere = connector_for(emulator, base_url, custom_audience_id="777")
    try:
        with pytest.raises(AccessDenied, match="access token") as denied:
            await bad.send(batch(person(1)))
        with pytest.raises(AccessDenied):
            await bad.check()
        with pytest.raises(TerminalError, match="does not exist"):
            await elsewhere.check()
    finally:
        await bad.close()
        await elsewhere.close()
    assert "190" in str(denied.value) and "EAAB-wrong-token-value" not in str(denied.value)
    emulator.script.append(
        Scripted(403, body={"error": {"code": 200, "message": "(#200) Permissions error"}})
    )
    with pytest.raises(AccessDenied, match="access to the audience"):
        await connector.send(batch(person(1)))
    await connector.check()
    assert emulator.log[-1].path == f"/v25.0/{emulator.audience_id}"


async def test_throttling_is_transient_and_waits_what_meta_estimates(
    emulator: MetaEmulator, connector: MetaConnector
) -> None:
    usage = {"act_1": [{"type": "custom_audience", "estimated_time_to_regain_access": 2}]}
    emulator.script.append(
        Scripted(
            400,
            {"X-Business-Use-Case-Usage": json.dumps(usage)},
            body={"error": {"code": 80003, "message": "too many calls", "is_transient": True}},
        )
    )
    with pytest.raises(TransientError) as scripted:
        await connector.send(batch(person(1)))
    assert scripted.value.retry_after == 120.0  # minutes, in seconds

    emulator.window = RateWindow(1, 0.3)
    await connector.send(batch(person(2)))
    with pytest.raises(TransientError, match="80003") as throttled:
        await connector.send(batch(person(3)))
    assert throttled.value.retry_after == 0.0  # Meta rounds to whole minutes
    result = await deliver(
        connector, batch(person(4)), RetryPolicy(attempts=6, initial_delay=0.1, max_delay=0.3)
    )
    assert result.accepted == ("4",) and emulator.throttled >= 2


async def test_a_request_refused_whole_is_bisected_to_the_row_at_fault(
    emulator: MetaEmulator, connector: MetaConnector
) -> None:
    emulator.poison = {sha("member.3@example.com")}
    with pytest.raises(TerminalError, match="Invalid parameter"):
        await connector.send(batch(person(3)))
    result = await deliver(connector, batch(*(person(i) for i in range(1, 5))), FAST)
    assert sorted(result.accepted) == ["1", "2", "4"]
    assert [key for key, _ in result.rejected] == ["3"]


async def test_the_emulator_refuses_what_the_api_refuses(
    emulator: MetaEmulator, base_url: str, connector: MetaConnector
) -> None:
    good, _ = connector.body(
        batch(person(1)), {"session_id": 7, "batch_seq": 1, "last_batch_flag": True}
    )
    url = f"{base_url}/v25.0/{emulator.audience_id}/users"
    auth = {"Authorization": f"Bearer {emulator.token}"}
    row = good["payload"]["data"][0]
    async with httpx.AsyncClient(headers=auth) as client:
        unknown = await client.post(url, json={**good, "operation": "ADD"})
        too_many = await client.post(
            url, json={**good, "payload": {**good["payload"], "data": [row] * 10_001}}
        )
        short_row = await client.post(
            url, json={**good, "payload": {**good["payload"], "data": [row[:2]]}}
        )
        no_seq = await client.post(url, json={**good, "session": {"session_id": 7}})
        no_token = await client.post(url, json=good, headers={"Authorization": ""})
        form_payload = await client.post(url, json={**good, "payload": json.dumps(good["payload"])})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == 100
    assert too_many.status_code == 400 and "10000" in too_many.json()["error"]["message"]
    assert short_row.status_code == 400 and no_seq.status_code == 400
    assert no_token.json()["error"]["code"] == 2500
    assert form_payload.status_code == 200 and form_payload.json()["num_received"] == 1


async def test_samples_naming_a_shared_value_reject_no_one_and_empty_removals_stay_unsent(
    emulator: MetaEmulator, connector: MetaConnector
) -> None:
    answer = {
        "audience_id": emulator.audience_id,
        "num_received": 3,
        "num_invalid_entries": 2,
        # A first-name hash all three rows carry cannot say whose entry it was; an index can.
        "invalid_entry_samples": {sha("maryjane"): "Invalid FN", "1": "Invalid entry"},
    }
    emulator.script.append(Scripted(200, body=answer))
    result = await connector.send(batch(person(1), person(2), person(3)))
    assert result.accepted == ("1", "3")
    assert result.rejected == (("2", "meta refused the entry: Invalid entry"),)

    requests = len(emulator.log)
    held_without_identifiers = Record("8", {"member_key": "8"})
    removed = await connector.send(batch(held_without_identifiers, operation=Operation.remove))
    assert removed.rejected == (("8", "no email or phone number to match on"),)
    assert len(emulator.log) == requests  # nothing sent
