"""The audience sync: which audience goes to which destination, how and when."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from models.columns import JSONType, UTCDateTime, new_id, utcnow
from models.enums import SyncMode, SyncStatus


class AudienceSync(SQLModel, table=True):
    __tablename__ = "audience_syncs"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    audience_id: uuid.UUID = Field(foreign_key="audiences.id", index=True)
    destination_id: uuid.UUID = Field(foreign_key="destinations.id", index=True)
    name: str
    description: str = ""
    field_mapping: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    sync_mode: SyncMode = Field(sa_type=String(16))
    schedule: str | None = None
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    status: SyncStatus = Field(default=SyncStatus.active, sa_type=String(16))
    status_error: str = ""
    created_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_synced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_run_id: uuid.UUID | None = None
    split_group_id: uuid.UUID | None = Field(default=None, foreign_key="split_groups.id")
    # Internal scheduling state, never exposed.
    next_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    consecutive_failures: int = 0
