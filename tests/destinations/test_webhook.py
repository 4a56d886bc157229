"""The webhook destination and batch delivery, against a real receiver over HTTP."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.destinations.address_guard import AddressPolicy, allow_all, public_only
from app.destinations.base import Batch, Operation, Record, TerminalError
from app.destinations.delivery import RetryPolicy, deliver
from app.destinations.webhook import WebhookConnector, parse_retry_after
from tests.destinations.receiver import Receiver, Scripted

FAST = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.2)


def connector_for(url: str, policy: AddressPolicy = allow_all, **extra: object) -> WebhookConnector:
    config = {"url": url, "secret": "hook-secret", "headers": {"X-Team": "growth"}, **extra}
    return WebhookConnector(config, policy=policy, timeout=extra.get("timeout", 5.0))  # type: ignore[arg-type]


@pytest.fixture
async def connector(hook_url: str) -> AsyncIterator[WebhookConnector]:
    connector = connector_for(hook_url)
    yield connector
    await connector.close()


def batch(*ids: int, operation: Operation = Operation.add) -> Batch:
    records = tuple(Record(str(i), {"id": i, "email": f"m{i}@example.com"}) for i in ids)
    return Batch(uuid.uuid4(), uuid.uuid4(), operation, records)


async def test_a_signed_batch_is_accepted_and_kept(
    connector: WebhookConnector, receiver: Receiver
) -> None:
    result = await deliver(connector, batch(1, 2, 3), FAST)
    assert result.accepted == ("1", "2", "3") and not result.rejected and not result.failed
    assert set(receiver.members) == {"1", "2", "3"} and receiver.bad_signatures == 0
    await deliver(connector, batch(2, operation=Operation.remove), FAST)
    assert set(receiver.members) == {"1", "3"}


async def test_a_wrong_secret_is_refused_by_the_receiver(hook_url: str, receiver: Receiver) -> None:
    connector = WebhookConnector({"url": hook_url, "secret": "other"}, policy=allow_all)
    try:
        result = await deliver(connector, batch(1, 2), FAST)
    finally:
        await connector.close()
    assert receiver.bad_signatures >= 1 and not receiver.members
    assert {key for key, _ in result.rejected} == {"1", "2"}


async def test_rows_refused_inside_a_200_are_rejected_with_their_reason(
    connector: WebhookConnector, receiver: Receiver
) -> None:
    receiver.reject_ids = {"2", "4"}
    result = await deliver(connector, batch(1, 2, 3, 4), FAST)
    assert result.accepted == ("1", "3")
    assert result.rejected == (("2", "invalid record 2"), ("4", "invalid record 4"))
    assert result.requests == 1


async def test_429_and_5xx_are_retried_honouring_retry_after(
    connector: WebhookConnector, receiver: Receiver
) -> None:
    receiver.script.extend([Scripted(429, {"Retry-After": "0"}), Scripted(503), Scripted(500)])
    result = await deliver(connector, batch(1, 2), FAST)
    assert result.accepted == ("1", "2") and result.requests == 4
    assert set(receiver.members) == {"1", "2"}


async def test_transient_errors_past_the_retries_fail_the_rows(
    connector: WebhookConnector, receiver: Receiver
) -> None:
    receiver.script.extend(Scripted(502) for _ in range(FAST.attempts))
    result = await deliver(connector, batch(1, 2), FAST)
    assert not result.accepted and not result.rejected
    assert [key for key, _ in result.failed] == ["1", "2"]
    assert result.requests == FAST.attempts and not receiver.members


async def test_timeouts_are_transient(hook_url: str, receiver: Receiver) -> None:
    receiver.script.append(Scripted(200, delay=1.0))
    connector = connector_for(hook_url, timeout=0.2)
    try:
        result = await deliver(connector, batch(7), FAST)
    finally:
        await connector.close()
    assert result.accepted == ("7",) and result.requests == 2


async def test_a_batch_refused_whole_is_bisected_to_the_bad_rows(
    connector: WebhookConnector, receiver: Receiver
) -> None:
    receiver.poison_ids = {"3", "6"}
    result = await deliver(connector, batch(*range(8)), FAST)
    assert sorted(result.accepted) == ["0", "1", "2", "4", "5", "7"]
    assert sorted(key for key, _ in result.rejected) == ["3", "6"]
    assert set(receiver.members) == {"0", "1", "2", "4", "5", "7"}
    assert result.requests <= 2 * 8  # bisection, not one request per row and retry


async def test_private_addresses_are_refused_after_resolution(hook_url: str) -> None:
    for url in (hook_url, hook_url.replace("127.0.0.1", "localhost")):
        connector = connector_for(url, policy=public_only)
        try:
            with pytest.raises(TerminalError, match="non-public address"):
                await connector.check()
            result = await deliver(connector, batch(1), FAST)
            assert result.rejected and "non-public" in result.rejected[0][1]
        finally:
            await connector.close()


async def test_redirects_are_checked_on_every_hop(hook_url: str, receiver: Receiver) -> None:
    receiver.redirect_to = hook_url.replace("127.0.0.1", "127.0.0.2")

    def only_first_hop(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return str(address) == "127.0.0.1"

    connector = connector_for(hook_url, policy=only_first_hop)
    try:
        result = await deliver(connector, batch(1), FAST)
    finally:
        await connector.close()
    assert receiver.requests == 1 and not receiver.members
    assert "non-public" in result.rejected[0][1]


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("3", 3.0), ("-1", 0.0), ("soon", None), ("2.5", 2.5)],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(when, usegmt=True))
    assert seconds is not None and 25 <= seconds <= 31
