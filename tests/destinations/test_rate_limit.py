"""The account limiter's burst: for every documented limit a connector declares, the worst case
a window can see from it, C + r·(W + jitter), stays within the vendor's limit; and a limiter
driven flat out through a busy event loop never makes the emulators' strict sliding window
(`RateWindow`) answer 429."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.destinations import klaviyo
from app.destinations.rate_limit import HEADROOM, JITTER, burst, limiter
from app.destinations.registry import SPECS
from app.destinations.spec import RateLimit
from tests.emulators.base import RateWindow

DECLARED = sorted(
    {spec.rate_limit for spec in SPECS.values() if spec.rate_limit is not None}
    | set(klaviyo.LIMITS.values()),
    key=lambda limit: (limit.requests, limit.per_seconds),
)


@pytest.mark.parametrize(
    "limit", DECLARED, ids=lambda limit: f"{limit.requests}/{limit.per_seconds:g}s"
)
def test_the_burst_keeps_every_window_within_the_documented_limit(limit: RateLimit) -> None:
    capacity = burst(limit)
    rate = limit.requests * HEADROOM / limit.per_seconds
    assert 1 <= capacity <= max(1, rate)
    if capacity > 1:
        assert capacity + rate * (limit.per_seconds + JITTER) <= limit.requests
    paced = limiter(limit)
    assert paced.max_rate == capacity
    assert paced.max_rate / paced.time_period == pytest.approx(rate)


def test_hubspot_gets_a_burst_and_braze_keeps_its_pace() -> None:
    assert burst(RateLimit(100, 10.0)) == 2  # 2 + 9.5 * 10.25 = 99.4 <= 100
    assert burst(RateLimit(3000, 3.0)) == 1  # 950 * 3.25 > 3000: no room beyond the pace


async def test_a_limiter_flat_out_through_a_late_event_loop_never_meets_a_429() -> None:
    """100 requests a second with 20 ms of jitter allowed: a burst of 3 at 95 a second. Every
    tenth request the loop is blocked for 30 ms (a busy engine), so the bucket refills and
    the burst is spent; the strict sliding window admits every request."""
    limit = RateLimit(100, 1.0)
    assert burst(limit, jitter=0.02) == 3
    paced = limiter(limit, jitter=0.02)
    window = RateWindow(limit.requests, limit.per_seconds)
    refused = 0
    sent = 0
    deadline = time.monotonic() + 2.5

    async def sender() -> None:
        nonlocal refused, sent
        while time.monotonic() < deadline:
            await paced.acquire()
            sent += 1
            if window.admit() is not None:
                refused += 1
            if sent % 10 == 0:
                time.sleep(0.03)  # noqa: ASYNC251 - the event loop is late for everyone

    await asyncio.gather(*(sender() for _ in range(8)))
    assert refused == 0
    assert sent > limit.requests  # more than one window's worth went through
