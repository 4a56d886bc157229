"""Sources, parent models, audiences, split groups and destinations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.columns import JSONType, UTCDateTime, new_id, utcnow


class Source(SQLModel, table=True):
    __tablename__ = "sources"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    name: str
    type: str
    #: Fernet token of the JSON config (it holds credentials).
    config_encrypted: str
    created_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ParentModel(SQLModel, table=True):
    """One row per person: a SQL query or a table on a source, with a primary key."""

    __tablename__ = "parent_models"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    source_id: uuid.UUID = Field(foreign_key="sources.id", index=True)
    name: str
    query: str | None = None
    table_name: str | None = None
    primary_key: str
    #: Introspected `[{"name", "type"}]`; None until introspected.
    columns: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONType)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Audience(SQLModel, table=True):
    __tablename__ = "audiences"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    model_id: uuid.UUID = Field(foreign_key="parent_models.id", index=True)
    name: str
    description: str = ""
    filter: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    split_salt: str
    created_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SplitGroup(SQLModel, table=True):
    __tablename__ = "split_groups"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    audience_id: uuid.UUID = Field(foreign_key="audiences.id", index=True)
    name: str
    #: Share of the audience in basis points (1/100 of a percent).
    basis_points: int
    is_holdout: bool = False
    position: int = 0
    #: The buckets the group owns, `[[start, stop], …]` half-open (DESIGN §5.3): kept so a
    #: percentage change moves as few members as possible. None on rows from before 0002.
    ranges: list[list[int]] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Destination(SQLModel, table=True):
    __tablename__ = "destinations"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    name: str
    type: str
    #: Fernet token of the JSON config; write-only through both APIs.
    config_encrypted: str
    created_by: uuid.UUID | None = Field(default=None, foreign_key="accounts.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
