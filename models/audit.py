"""The audit log: one row per mutation, secrets redacted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.columns import JSONType, UTCDateTime, new_id, utcnow


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    #: Account id of the actor, or "system".
    actor: str
    actor_token_id: uuid.UUID | None = None
    action: str
    target_type: str
    target_id: str
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
