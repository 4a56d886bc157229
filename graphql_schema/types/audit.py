"""The audit log: one entry per mutation, secrets redacted."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graphql_schema.scalars import to_id
from models import AuditLog


@strawberry.type
class AuditEntry:
    id: strawberry.ID
    workspace_id: strawberry.ID
    actor: str = strawberry.field(description="Account id of the actor, or 'system'.")
    action: str
    target_type: str
    target_id: str
    at: datetime
    detail: JSON

    @classmethod
    def from_row(cls, row: AuditLog) -> AuditEntry:
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            actor=row.actor,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            at=row.at,
            detail=JSON(row.detail),
        )
