"""What a finished run does to its sync: last run, last success, and the error status."""

from __future__ import annotations

from typing import Any

from models import AudienceSync
from models.columns import utcnow
from models.enums import RunStatus, SyncStatus

#: Consecutive failed runs after which a sync is moved to `error` (DESIGN §7).
FAILURES_BEFORE_ERROR = 3


def apply_run_outcome(
    sync: AudienceSync, run_id: Any, status: RunStatus, error: dict[str, Any] | None
) -> None:
    sync.last_run_id = run_id
    if status in (RunStatus.succeeded, RunStatus.partial):
        sync.last_synced_at = utcnow()
        sync.consecutive_failures = 0
        if sync.status == SyncStatus.error:
            sync.status, sync.status_error = SyncStatus.active, ""
    elif status is RunStatus.failed:
        sync.consecutive_failures += 1
        if sync.consecutive_failures >= FAILURES_BEFORE_ERROR and sync.status == SyncStatus.active:
            sync.status = SyncStatus.error
            message = (error or {}).get("message") or "the last runs failed"
            sync.status_error = f"{sync.consecutive_failures} runs in a row failed: {message}"[
                :1000
            ]
