"""The audit log: recorded inside each mutation's transaction, read by admins."""

from __future__ import annotations

import uuid
from typing import Any

from app.context import ServiceContext
from app.services.lookup import Page, authorize, page
from models import AuditLog
from models.enums import Role

REDACTED = "[redacted]"
#: Keys whose values never reach the audit log.
SECRET_KEYS = frozenset({"config", "token", "secret", "password", "headers", "token_hash"})


def redact(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: REDACTED if k in SECRET_KEYS else redact(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [redact(item) for item in detail]
    return detail


def record_audit(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the current transaction (committed with the change itself)."""
    ctx.session.add(
        AuditLog(
            workspace_id=workspace_id,
            actor=str(ctx.principal.account_id),
            actor_token_id=ctx.principal.token_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=redact(_jsonable(detail or {})),
        )
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def list_audit_log(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[AuditLog]:
    """Newest first. Admins only."""
    authorize(ctx, workspace_id, Role.admin)
    return await page(
        ctx.session,
        AuditLog,
        AuditLog.workspace_id == workspace_id,
        order_by=[AuditLog.at.desc(), AuditLog.id],  # type: ignore[attr-defined]
        offset=offset,
        limit=limit,
    )
