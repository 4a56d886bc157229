"""Delivering one batch whatever the destination does: retries, then bisection.

Transient errors are retried with exponential backoff and jitter, honouring `Retry-After`,
up to `attempts` tries; after that the batch's rows fail for this run. A batch refused as a
whole (a terminal error) is split in halves until the rows at fault are isolated and
rejected one by one, so one bad row never sinks its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.destinations.base import Batch, BatchResult, Connector, TerminalError, TransientError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0


@dataclass(frozen=True)
class Delivery:
    """What became of each row of a batch."""

    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]
    #: Rows whose delivery could not be settled (transient errors outlasted the retries).
    failed: tuple[tuple[str, str], ...]
    requests: int


class _Waiter:
    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.initial_delay
        )
        self._max = policy.max_delay

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self._max))
        return float(backoff)


async def deliver(connector: Connector, batch: Batch, policy: RetryPolicy) -> Delivery:
    """Send `batch`, retrying and bisecting as needed; never raises for the destination's sake."""
    accepted: list[str] = []
    rejected: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    requests = 0

    async def attempt(part: Batch) -> BatchResult:
        nonlocal requests
        async for try_ in AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(policy.attempts),
            wait=_Waiter(policy),
            reraise=False,
        ):
            with try_:
                requests += 1
                return await connector.send(part)
        raise AssertionError("unreachable")  # pragma: no cover

    async def settle(part: Batch) -> None:
        try:
            result = await attempt(part)
        except RetryError as exc:
            reason = str(exc.last_attempt.exception())
            failed.extend((record.key, reason) for record in part.records)
            return
        except TerminalError as exc:
            if len(part.records) == 1:
                rejected.append((part.records[0].key, str(exc)))
                return
            for half in part.split():
                await settle(half)
            return
        accepted.extend(result.accepted)
        rejected.extend(result.rejected)

    await settle(batch)
    return Delivery(tuple(accepted), tuple(rejected), tuple(failed), requests)
