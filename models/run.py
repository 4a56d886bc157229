"""Runs, their events, their row outcomes, and what each destination holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, LargeBinary, Numeric, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.columns import JSONType, UTCDateTime, new_id, utcnow
from models.enums import ACTIVE_RUN_STATUSES, RunStatus, RunTrigger

ACTIVE_STATUSES_SQL = "status IN ({})".format(
    ", ".join(f"'{s.value}'" for s in ACTIVE_RUN_STATUSES)
)


#: A member key: compared byte for byte (code points) on every database.
MEMBER_KEY = String().with_variant(String(collation="C"), "postgresql")


def zero_counts() -> dict[str, int]:
    return {"add": 0, "update": 0, "remove": 0}


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"
    __table_args__ = (
        UniqueConstraint("sync_id", "scheduled_for"),
        # One active run per sync, enforced by the database itself.
        Index(
            "uq_sync_runs_one_active",
            "sync_id",
            unique=True,
            postgresql_where=text(ACTIVE_STATUSES_SQL),
            sqlite_where=text(ACTIVE_STATUSES_SQL),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    sync_id: uuid.UUID = Field(foreign_key="audience_syncs.id", index=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", index=True)
    status: RunStatus = Field(default=RunStatus.queued, sa_type=String(16))
    phase: str | None = None
    trigger: RunTrigger = Field(default=RunTrigger.manual, sa_type=String(16))
    full_resync: bool = False
    dry_run: bool = False
    retry_failed_only: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    query_size: int = 0
    invalid: int = 0
    planned: dict[str, int] = Field(default_factory=zero_counts, sa_type=JSONType)
    succeeded: dict[str, int] = Field(default_factory=zero_counts, sa_type=JSONType)
    failed: dict[str, int] = Field(default_factory=zero_counts, sa_type=JSONType)
    unchanged: int = 0
    retried_from_previous: int = 0
    progress: float = 0.0
    error: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempt: int = 1
    scheduled_for: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SyncRunEvent(SQLModel, table=True):
    """Append-only log of a run; feeds subscriptions and replay."""

    __tablename__ = "sync_run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="sync_runs.id", index=True)
    seq: int
    type: str
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SyncedMember(SQLModel, table=True):
    """A member the destination holds because we sent it, with the payload's fingerprint and
    the identifiers it was sent under (normalised, hashed where the destination hashes), which
    a later removal needs: an ad platform forgets a person by the same hashed email.

    `sync_id` names an audience sync without a foreign key: checking one for every row a run
    records cost PostgreSQL about a third of a first sync's work. A commit checks (and on
    PostgreSQL locks) the sync once instead (`app.sync.held.record_sent`), and deleting a
    sync locks it before it deletes the held state, so none outlives its sync."""

    __tablename__ = "synced_members"
    __table_args__ = (Index("ix_synced_members_order", "sync_id", "member_order"),)

    sync_id: uuid.UUID = Field(primary_key=True)
    #: Compared byte for byte ("C" on PostgreSQL, as SQLite's default): the primary key's
    #: index is in the membership stream's order for text keys.
    member_key: str = Field(primary_key=True, sa_type=MEMBER_KEY)
    #: The key as a number, for the syncs whose key is a number (PostgreSQL only; NULL
    #: elsewhere): its index gives the held state in the stream's numeric order unsorted.
    member_order: Decimal | None = Field(default=None, sa_type=Numeric)
    fingerprint: str
    #: The digest of the source line the payload was made from, under the sync's recipe
    #: (`app.sync.row_digest`); None when the row did not come as a line.
    row_digest: bytes | None = Field(default=None, sa_type=LargeBinary)
    identifiers: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    synced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RowResult(SQLModel, table=True):
    """Row-level outcome of a run that is not plain success (rejected, invalid, failed)."""

    __tablename__ = "row_results"

    id: int | None = Field(default=None, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="sync_runs.id", index=True)
    member_key: str | None = None
    operation: str
    status: str
    error: str = ""
    #: What was sent (rejected, failed): a later run that would send the same fingerprint
    #: again may hold the row back (`config.retry_failed_rows = false`).
    fingerprint: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
