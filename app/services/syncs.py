"""Audience syncs: create, read, change and delete, with every rule of the contract."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlmodel import select

from app.context import ServiceContext
from app.destinations.registry import spec_for
from app.destinations.spec import DestinationSpec
from app.errors import Conflict, InvalidInput
from app.services.audit import record_audit
from app.services.lookup import (
    Page,
    authorize,
    get_many_scoped,
    get_scoped,
    page,
    reference_in_workspace,
)
from app.validation import parse_input
from models import (
    Audience,
    AudienceSync,
    Destination,
    ParentModel,
    RowResult,
    SplitGroup,
    SyncedMember,
    SyncRun,
    SyncRunEvent,
)
from models.columns import utcnow
from models.enums import ACTIVE_RUN_STATUSES, DestinationType, Role
from models.shapes.audience_sync import (
    SYNC_NULLABLE_FIELDS,
    SYNC_READ_ONLY_FIELDS,
    AudienceSyncCreate,
    AudienceSyncUpdate,
)

KIND = "audience sync"


async def list_audience_syncs(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[AudienceSync]:
    """The workspace's syncs, oldest first (a stable order for cursors)."""
    authorize(ctx, workspace_id)
    return await page(
        ctx.session,
        AudienceSync,
        AudienceSync.workspace_id == workspace_id,
        order_by=[AudienceSync.created_at, AudienceSync.id],
        offset=offset,
        limit=limit,
    )


async def get_audience_sync(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, sync_id: uuid.UUID
) -> AudienceSync:
    authorize(ctx, workspace_id)
    return await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, KIND)


async def get_audience_syncs_by_ids(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, sync_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AudienceSync]:
    """The workspace's syncs among `sync_ids`, in one query (for batch loaders)."""
    authorize(ctx, workspace_id)
    return await get_many_scoped(ctx.session, AudienceSync, sync_ids, workspace_id)


async def create_audience_sync(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object
) -> AudienceSync:
    """Validate the body (DESIGN §3.2 and the contract) and store a new sync."""
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(
        AudienceSyncCreate, data, read_only=SYNC_READ_ONLY_FIELDS, nullable=SYNC_NULLABLE_FIELDS
    )
    values = body.model_dump(exclude_none=True, exclude={"config"})
    values["config"] = body.config.model_dump(mode="json", exclude_none=True)
    values.setdefault("description", "")
    sync = AudienceSync(workspace_id=workspace_id, created_by=ctx.principal.account_id, **values)
    await _check_references(ctx, sync)
    ctx.session.add(sync)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="audience_sync.create",
        target_type=KIND,
        target_id=sync.id,
        detail={"name": sync.name},
    )
    await ctx.session.commit()
    return sync


async def update_audience_sync(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, sync_id: uuid.UUID, data: object
) -> AudienceSync:
    """Change only the given fields; `updated_at` moves."""
    authorize(ctx, workspace_id, Role.editor)
    sync = await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, KIND)
    body = parse_input(
        AudienceSyncUpdate, data, read_only=SYNC_READ_ONLY_FIELDS, nullable=SYNC_NULLABLE_FIELDS
    )
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "config":
            changes[field] = value.model_dump(mode="json", exclude_none=True)
        elif field == "description":
            changes[field] = value or ""
        elif field == "field_mapping":
            changes[field] = [item.model_dump() for item in value]
        else:
            changes[field] = value
    # No autoflush: an unchecked reference must not reach the database (FK error) first.
    with ctx.session.no_autoflush:
        for field, value in changes.items():
            setattr(sync, field, value)
        await _check_references(ctx, sync)
    sync.updated_at = utcnow()
    if {"schedule", "config", "status"} & set(changes):
        sync.next_run_at = None  # the scheduler plans the next tick afresh (none missed)
    ctx.session.add(sync)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="audience_sync.update",
        target_type=KIND,
        target_id=sync.id,
        detail={"fields": sorted(changes)},
    )
    await ctx.session.commit()
    return sync


async def delete_audience_sync(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, sync_id: uuid.UUID
) -> None:
    """Delete a sync with its runs and state; refused while a run is active."""
    authorize(ctx, workspace_id, Role.editor)
    sync = await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, KIND)
    # Locked first: a run's commit in progress finishes, and its held rows are deleted too.
    await ctx.session.execute(
        select(AudienceSync.id).where(AudienceSync.id == sync.id).with_for_update()
    )
    active = (
        await ctx.session.execute(
            select(SyncRun.id)
            .where(SyncRun.sync_id == sync.id)
            .where(SyncRun.status.in_(ACTIVE_RUN_STATUSES))  # type: ignore[attr-defined]
        )
    ).scalar_one_or_none()
    if active is not None:
        raise Conflict(
            f"audience sync {sync.id} has an active run {active}; cancel it first",
        )
    run_ids = select(SyncRun.id).where(SyncRun.sync_id == sync.id)
    await ctx.session.execute(delete(SyncRunEvent).where(SyncRunEvent.run_id.in_(run_ids)))  # type: ignore[attr-defined]
    await ctx.session.execute(delete(RowResult).where(RowResult.run_id.in_(run_ids)))  # type: ignore[attr-defined]
    await ctx.session.execute(delete(SyncRun).where(SyncRun.sync_id == sync.id))  # type: ignore[arg-type]
    await ctx.session.execute(delete(SyncedMember).where(SyncedMember.sync_id == sync.id))  # type: ignore[arg-type]
    await ctx.session.delete(sync)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="audience_sync.delete",
        target_type=KIND,
        target_id=sync.id,
        detail={"name": sync.name},
    )
    await ctx.session.commit()


def _check_destination_fit(sync: AudienceSync, spec: DestinationSpec) -> None:
    """The mapping names fields the destination type takes (and an identifier where it needs
    one); `on_exit` is a behaviour it supports."""
    mapped = [item["destination_field"] for item in sync.field_mapping]
    for index, problem in spec.check_mapping(mapped):
        field = "field_mapping" if index < 0 else f"field_mapping[{index}].destination_field"
        raise InvalidInput.field(field, problem)
    on_exit = sync.config.get("on_exit")
    if on_exit is not None and on_exit not in spec.on_exit:
        supported = ", ".join(sorted(spec.on_exit))
        raise InvalidInput.field(
            "config.on_exit", f"{spec.kind.value} supports on_exit {supported}, not {on_exit}"
        )


async def _check_references(ctx: ServiceContext, sync: AudienceSync) -> None:
    """Audience, destination and split group must be of this workspace and fit together."""
    session, workspace_id = ctx.session, sync.workspace_id
    audience = await reference_in_workspace(
        session, Audience, sync.audience_id, workspace_id, "audience_id", "audience"
    )
    destination = await reference_in_workspace(
        session, Destination, sync.destination_id, workspace_id, "destination_id", "destination"
    )
    _check_destination_fit(sync, spec_for(DestinationType(destination.type)))
    if sync.split_group_id is not None:
        group = await session.get(SplitGroup, sync.split_group_id)
        if group is None or group.audience_id != audience.id:
            raise InvalidInput.field(
                "split_group_id", f"no split group {sync.split_group_id} in audience {audience.id}"
            )
        if group.is_holdout:
            raise InvalidInput.field("split_group_id", f"split group {group.id} is a holdout")
    model = await session.get(ParentModel, audience.model_id)
    if model is not None and model.columns is not None:
        known = {column["name"] for column in model.columns}
        for index, item in enumerate(sync.field_mapping):
            if item["source_column"] not in known:
                raise InvalidInput.field(
                    f"field_mapping[{index}].source_column",
                    f"column {item['source_column']!r} is not a column of model {model.id}",
                )
