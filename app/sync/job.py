"""What one run of the engine is given (`EngineInput`), what it counts (`Tally`), and how it
ends early (`RunStopped`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.destinations.base import Connector, Operation
from app.destinations.delivery import RetryPolicy
from app.runs import Publish
from app.sources.membership import LineBatch
from app.sync.plan import Payload
from app.sync.row_digest import RowDigests
from models import AudienceSync
from models.enums import RunStatus

OPERATIONS = tuple(op.value for op in Operation)


class RunStopped(Exception):
    """The run ends early: cancelled, timed out, or refused by a guard (with an error code)."""

    def __init__(self, status: RunStatus, code: str = "", message: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Tally:
    """The run's counts; `query_size = planned.add + planned.update + unchanged + invalid`."""

    query_size: int = 0
    invalid: int = 0
    unchanged: int = 0
    planned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    succeeded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    #: Rows sent (or, in a dry run, planned) that the last refusing run rejected or failed.
    retried_from_previous: int = 0

    def columns(self) -> dict[str, Any]:
        return {
            "query_size": self.query_size,
            "invalid": self.invalid,
            "unchanged": self.unchanged,
            "planned": dict(self.planned),
            "succeeded": dict(self.succeeded),
            "failed": dict(self.failed),
            "retried_from_previous": self.retried_from_previous,
        }


@dataclass(frozen=True)
class EngineInput:
    run_id: uuid.UUID
    sync: AudienceSync
    #: Batches of (member_key, row) in key order, None keys last; or batches of lines
    #: (`LineBatch`), when `row_digests` can tell the unchanged ones from their lines.
    members: AsyncIterator[Sequence[tuple[str | None, dict[str, Any]]] | LineBatch]
    numeric_keys: bool
    connector: Connector
    full_resync: bool = False
    dry_run: bool = False
    #: Consider only the rows the sync's last refusing run rejected or failed (DESIGN §5.2).
    retry_failed_only: bool = False
    #: Seconds the run may take; past them it stops after its current batch (`timeout`).
    timeout: float | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    publish: Publish | None = None
    #: The destination's normalisation of a mapped payload; raises `InvalidValue` (None:
    #: the payload goes as mapped).
    prepare: Callable[[Payload], Payload] | None = None
    #: The identifying part of a prepared payload, kept to remove the member later (None:
    #: the destination keeps no identifiers).
    identify: Callable[[Payload], Payload] | None = None
    #: The most batches the run keeps in flight at once (DESIGN §5.5).
    concurrency: int = 1
    #: Digests of the members' source lines under the sync's recipe (None: the run
    #: fingerprints every member).
    row_digests: RowDigests | None = None
