"""Rate limits honoured up front: one limiter per destination account and event loop.

The documented limit (say HubSpot's 100 requests per 10 s) becomes a pace r at `HEADROOM` of
it, with a burst capacity C (aiolimiter's leaky bucket): a request that waited behind a busy
event loop does not lose its slot for good, the next ones catch up. Any window of W seconds
then holds at most C + r·W requests, and C is chosen so that C + r·(W + `JITTER`) stays within
the documented L: the requests a late or early arrival moves into a window still fit, and a
run never meets a 429 from the vendor's window. Runs sharing an account share its budget. The
pace is per process: several workers on one account each keep their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from typing import Any

from aiolimiter import AsyncLimiter

from app.destinations.spec import DestinationSpec, RateLimit

#: The share of the documented rate we use: what latency jitter on the vendor's side needs.
HEADROOM = 0.95
#: Seconds by which requests may reach the vendor closer together than the limiter let them
#: go (event-loop lag, connection set-up); the burst leaves room for that many requests.
JITTER = 0.25

_limiters: dict[tuple[int, str], AsyncLimiter] = {}


def account_key(spec: DestinationSpec, config: dict[str, Any]) -> str:
    """A digest naming the account (never the credentials themselves)."""
    named = {name: config.get(name) for name in spec.account_fields}
    text = json.dumps([spec.kind.value, named], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def burst(limit: RateLimit, jitter: float = JITTER) -> int:
    """The burst capacity C: the most that keeps C + r·(W + jitter) within the limit, at most
    one second of the pace, at least 1 (then the pace alone, which HEADROOM keeps inside)."""
    rate = limit.requests * HEADROOM / limit.per_seconds
    room = limit.requests - rate * (limit.per_seconds + jitter)
    return max(1, min(math.floor(room), math.floor(rate)))


def limiter(limit: RateLimit, jitter: float = JITTER) -> AsyncLimiter:
    """A limiter for `limit`: capacity `burst(limit)`, draining at HEADROOM of the rate."""
    capacity = burst(limit, jitter)
    return AsyncLimiter(capacity, capacity * limit.per_seconds / (limit.requests * HEADROOM))


def limiter_for(account: str, limit: RateLimit) -> AsyncLimiter:
    """The account's limiter in the running event loop (call it from a coroutine)."""
    key = (id(asyncio.get_running_loop()), account)
    found = _limiters.get(key)
    if found is None:
        found = _limiters[key] = limiter(limit)
    return found
