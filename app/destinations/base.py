"""The connector interface every destination implements, and its error taxonomy.

A connector knows its batch limits, how to `check()` its credentials and how to `send()` one
batch. It raises `TransientError` for what a retry may fix (timeouts, 5xx, 429) and
`TerminalError` for what it will not (a 4xx refusing the whole batch), `AccessDenied` when
the credentials are refused (the run stops). Rows the destination
refuses inside an accepted request come back in `BatchResult.rejected`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple, Protocol


class Operation(StrEnum):
    add = "add"
    update = "update"
    remove = "remove"


class Record(NamedTuple):
    """One member as the destination sees it: its key and the mapped, normalised fields.
    (A named tuple: a run makes one per member sent, at a third of a frozen dataclass's
    cost.)"""

    key: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    sync_id: uuid.UUID
    run_id: uuid.UUID
    operation: Operation
    records: tuple[Record, ...]

    def split(self) -> tuple[Batch, Batch]:
        middle = len(self.records) // 2
        first, second = self.records[:middle], self.records[middle:]
        return (
            Batch(self.sync_id, self.run_id, self.operation, first),
            Batch(self.sync_id, self.run_id, self.operation, second),
        )


@dataclass(frozen=True)
class BatchResult:
    accepted: tuple[str, ...]
    #: (member key, reason) for each row the destination refused.
    rejected: tuple[tuple[str, str], ...] = field(default_factory=tuple)


class DestinationError(Exception):
    """A failure talking to a destination. Messages never carry credentials."""


class TransientError(DestinationError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TerminalError(DestinationError):
    """The destination refused the request as a whole; retrying the same request won't help."""


class AccessDenied(DestinationError):
    """The destination refused the credentials (or the account lacks access): no request of
    this run can succeed, so the run fails at once instead of splitting batches."""


class Connector(Protocol):
    type: ClassVar[str]
    #: The most records one request may carry (the vendor's hard limit).
    max_batch_size: ClassVar[int]
    #: What a sync uses unless its config says otherwise.
    default_batch_size: ClassVar[int]

    async def check(self) -> None: ...

    async def send(self, batch: Batch) -> BatchResult: ...

    async def close(self) -> None: ...
