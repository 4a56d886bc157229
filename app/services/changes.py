"""Committing a change together with its audit row."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from app.context import ServiceContext
from app.services.audit import record_audit
from models.columns import utcnow


async def commit_change(
    ctx: ServiceContext,
    row: SQLModel,
    *,
    action: str,
    kind: str,
    detail: dict[str, Any] | None = None,
    deleted: bool = False,
) -> None:
    """Write (or delete) `row` and its audit entry in one transaction."""
    if deleted:
        await ctx.session.delete(row)
    else:
        if action.endswith(".update"):
            row.updated_at = utcnow()
        ctx.session.add(row)
    record_audit(
        ctx,
        workspace_id=row.workspace_id,  # type: ignore[attr-defined]
        action=action,
        target_type=kind,
        target_id=row.id,  # type: ignore[attr-defined]
        detail=detail,
    )
    await ctx.session.commit()


def apply_changes(row: SQLModel, changes: dict[str, Any]) -> list[str]:
    for field, value in changes.items():
        setattr(row, field, value)
    return sorted(changes)
