"""Helpers of the REST tests: paths, error assertions, and runs as the engine leaves them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from app.runtime import Runtime
from models import RowResult, SyncRun, SyncRunEvent
from models.columns import utcnow
from tests.factories import World

#: "Audience Sync Object" of the spec, field for field.
SYNC_FIELDS = {
    "id",
    "workspace_id",
    "audience_id",
    "destination_id",
    "name",
    "description",
    "field_mapping",
    "sync_mode",
    "schedule",
    "config",
    "status",
    "status_error",
    "created_by",
    "created_at",
    "updated_at",
    "last_synced_at",
    "last_run_id",
    "split_group_id",
}
#: The run object of DESIGN §4.
RUN_FIELDS = {
    "id",
    "sync_id",
    "workspace_id",
    "status",
    "phase",
    "trigger",
    "full_resync",
    "dry_run",
    "created_at",
    "started_at",
    "finished_at",
    "query_size",
    "invalid",
    "planned",
    "succeeded",
    "failed",
    "unchanged",
    "retried_from_previous",
    "progress",
    "error",
}


def base(world: World) -> str:
    return f"/api/v1/workspaces/{world.workspace_id}"


def assert_error(response: httpx.Response, status: int, names: str | None = None) -> dict[str, Any]:
    """The envelope with `status`; when `names` is given, a detail or the message names it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] and error["message"]
    if names is not None:
        fields = [detail["field"] for detail in error["details"]]
        assert names in fields or names in error["message"], error
    return error


async def create_finished_run(
    runtime: Runtime, world: World, sync_id: uuid.UUID, *, status: str = "partial"
) -> SyncRun:
    """A run as the engine leaves it: counts, three events, one rejected and one invalid row."""
    now = utcnow()
    run = SyncRun(
        sync_id=sync_id,
        workspace_id=world.workspace_id,
        status=status,
        phase="reporting",
        started_at=now,
        finished_at=now,
        query_size=5,
        invalid=1,
        planned={"add": 4, "update": 0, "remove": 0},
        succeeded={"add": 3, "update": 0, "remove": 0},
        failed={"add": 1, "update": 0, "remove": 0},
        progress=1.0,
    )
    async with runtime.database.session() as session:
        session.add(run)
        await session.flush()
        for seq, kind in enumerate(("status", "progress", "status"), start=1):
            session.add(SyncRunEvent(run_id=run.id, seq=seq, type=kind, payload={"n": seq}))
        session.add(RowResult(run_id=run.id, member_key="k1", operation="add", status="rejected"))
        session.add(RowResult(run_id=run.id, member_key=None, operation="add", status="invalid"))
        await session.commit()
    return run
