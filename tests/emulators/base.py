"""What every vendor emulator shares: scripted misbehaviour, a rate window enforced as the
vendor documents it, a log of the requests, and the membership it was told.

An emulator is a small Starlette app written from the vendor's public documentation. It checks
authentication and the exact request shape (a request the vendor would refuse is refused with
the vendor's status and error body), enforces the documented batch and rate limits, can be
told to misbehave (`script`: the next write requests get these answers; `reject`: these people
are refused one by one inside a successful answer, as the vendor reports per-row errors;
`poison`: a request naming one of these people is refused whole), and keeps the audience it
holds so tests compare it with what the sync promised.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response


@dataclass
class Scripted:
    """One scripted answer to a write request: a status, headers, a delay first."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: Any = None


@dataclass
class RateWindow:
    """At most `requests` in any sliding `seconds` window (the strictest reading of a
    vendor's "N requests per T seconds")."""

    requests: int
    seconds: float
    stamps: deque[float] = field(default_factory=deque)

    def admit(self) -> float | None:
        """None when the request fits the window, else the seconds until it would."""
        now = time.monotonic()
        while self.stamps and now - self.stamps[0] >= self.seconds:
            self.stamps.popleft()
        if len(self.stamps) >= self.requests:
            return self.seconds - (now - self.stamps[0])
        self.stamps.append(now)
        return None


@dataclass
class RequestLog:
    method: str
    path: str
    #: How many people (or rows) the request carried; 0 for reads.
    items: int
    status: int


@dataclass
class EmulatorBase:
    """State and helpers of an emulator; a vendor's emulator adds its routes and its rules."""

    #: The credential the emulator accepts (each vendor carries it its own way).
    token: str = "emulator-token"
    script: deque[Scripted] = field(default_factory=deque)
    #: People (by the emulator's identity, see `members`) refused one by one in a 2xx.
    reject: set[str] = field(default_factory=set)
    #: People whose presence makes the vendor refuse the whole request (a 400).
    poison: set[str] = field(default_factory=set)
    log: list[RequestLog] = field(default_factory=list)
    #: The sliding rate window, when the vendor documents one (None: unlimited).
    window: RateWindow | None = None
    #: 429s answered because the rate window was exceeded (not scripted ones).
    throttled: int = 0

    def app(self) -> Starlette:  # pragma: no cover - every emulator overrides it
        raise NotImplementedError

    def close(self) -> None:
        """Release what the emulator holds outside this process (a database); most hold
        nothing."""

    def members(self) -> dict[str, dict[str, Any]]:  # pragma: no cover - overridden
        """The target audience (list, segment, table) as the vendor holds it: identity →
        what it stores about that person."""
        raise NotImplementedError

    # --- helpers for the vendor routes ------------------------------------------------------

    def throttle(self) -> Response | None:
        """The vendor's 429 when the request exceeds the rate window, else None (counted)."""
        if self.window is None:
            return None
        wait = self.window.admit()
        if wait is None:
            return None
        self.throttled += 1
        return JSONResponse(
            {"error": "rate limit exceeded"},
            status_code=429,
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )

    async def scripted(self) -> Response | None:
        """The next scripted answer, if any (after its delay)."""
        if not self.script:
            return None
        answer = self.script.popleft()
        await asyncio.sleep(answer.delay)
        if answer.status == 200 and answer.body is None:
            return None  # a delay only: behave normally afterwards
        return JSONResponse(
            answer.body if answer.body is not None else {"error": "scripted"},
            status_code=answer.status,
            headers=answer.headers,
        )

    def record(self, method: str, path: str, items: int, status: int) -> None:
        self.log.append(RequestLog(method, path, items, status))

    @property
    def max_items_seen(self) -> int:
        return max((entry.items for entry in self.log), default=0)

    @property
    def write_requests(self) -> int:
        return sum(1 for entry in self.log if entry.items)
