"""Shape of a sync run (DESIGN §4)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from models.enums import RunStatus, RunTrigger
from models.shapes.common import InputShape, OutputShape, Timestamp


class RunCounts(BaseModel):
    add: int = 0
    update: int = 0
    remove: int = 0


class RunError(BaseModel):
    code: str
    message: str


class TriggerOptions(InputShape):
    full_resync: bool = False
    retry_failed_only: bool = False
    dry_run: bool = False


class SyncRunPublic(OutputShape):
    id: uuid.UUID
    sync_id: uuid.UUID
    workspace_id: uuid.UUID
    status: RunStatus
    phase: str | None
    trigger: RunTrigger
    full_resync: bool
    dry_run: bool
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    query_size: int
    invalid: int
    planned: RunCounts
    succeeded: RunCounts
    failed: RunCounts
    unchanged: int
    retried_from_previous: int
    progress: float
    error: RunError | None


class RowResultPublic(OutputShape):
    """A row of a run that did not simply succeed (`GET …/runs/{runId}/rows`)."""

    id: int
    member_key: str | None
    operation: str
    status: str
    error: str
    created_at: Timestamp


class SyncRunEventPublic(OutputShape):
    seq: int
    type: str
    payload: dict[str, Any]
    at: Timestamp
