"""Rate limits honoured up front: one limiter per destination account and event loop.

The documented limit (say HubSpot's 100 requests per 10 s) becomes an even pace at
`HEADROOM` of it (aiolimiter's leaky bucket with room for one request), so a run never
bursts into a window the vendor would answer with 429, and runs sharing an account share its
budget. The pace is per process: several workers on one account each keep their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from aiolimiter import AsyncLimiter

from app.destinations.spec import DestinationSpec, RateLimit

#: The share of the documented rate we use: what latency jitter on the vendor's side needs.
HEADROOM = 0.95

_limiters: dict[tuple[int, str], AsyncLimiter] = {}


def account_key(spec: DestinationSpec, config: dict[str, Any]) -> str:
    """A digest naming the account (never the credentials themselves)."""
    named = {name: config.get(name) for name in spec.account_fields}
    text = json.dumps([spec.kind.value, named], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def limiter_for(account: str, limit: RateLimit) -> AsyncLimiter:
    """The account's limiter in the running event loop (call it from a coroutine)."""
    key = (id(asyncio.get_running_loop()), account)
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = AsyncLimiter(1, limit.per_seconds / (limit.requests * HEADROOM))
    return limiter
