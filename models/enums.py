"""Closed sets of the domain."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"  #: tokens, members, audit log, and everything an editor does
    editor = "editor"  #: create, change and run objects
    viewer = "viewer"  #: read only

    @property
    def rank(self) -> int:
        return {"viewer": 0, "editor": 1, "admin": 2}[self.value]


class SourceType(StrEnum):
    postgres = "postgres"
    sqlite = "sqlite"
    duckdb = "duckdb"


class DestinationType(StrEnum):
    webhook = "webhook"
    google_ads = "google_ads"
    meta = "meta"
    hubspot = "hubspot"
    braze = "braze"
    klaviyo = "klaviyo"
    mailchimp = "mailchimp"
    iterable = "iterable"
    salesforce = "salesforce"
    postgres = "postgres"


class SyncMode(StrEnum):
    add = "add"
    remove = "remove"
    mirror = "mirror"
    upsert = "upsert"


class SyncStatus(StrEnum):
    draft = "draft"  #: saved but never run
    active = "active"
    paused = "paused"  #: keeps its schedule, does not fire
    error = "error"  #: set by the system when runs keep failing


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    cancelling = "cancelling"
    succeeded = "succeeded"
    partial = "partial"  #: some rows rejected or invalid
    failed = "failed"
    cancelled = "cancelled"


#: A sync has at most one run in these statuses.
ACTIVE_RUN_STATUSES = (RunStatus.queued, RunStatus.running, RunStatus.cancelling)


class RowStatus(StrEnum):
    """Outcome of a row that did not simply succeed (a `RowResult`)."""

    rejected = "rejected"  #: the destination refused it
    invalid = "invalid"  #: it could not be normalised, so it was never sent
    failed = "failed"  #: sending it failed (transient errors ran out of retries)


class RunPhase(StrEnum):
    querying = "querying"
    planning = "planning"
    syncing = "syncing"
    reporting = "reporting"


class RunTrigger(StrEnum):
    manual = "manual"
    schedule = "schedule"
    api = "api"


class OnExit(StrEnum):
    remove = "remove"
    clear_fields = "clear_fields"
    delete_record = "delete_record"
