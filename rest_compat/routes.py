"""The route table: every REST path under /api/v1, its handler, shapes and statuses.

The server routes from this table and the OpenAPI document is generated from it, so the two
cannot drift apart. Paths and field names follow the published contract
(spec/audience-syncs-api.md) and DESIGN §3.2.
"""

from __future__ import annotations

from pydantic import BaseModel

from models.shapes.audience_sync import (
    SYNC_NULLABLE_FIELDS,
    AudienceSyncCreate,
    AudienceSyncPublic,
    AudienceSyncUpdate,
)
from models.shapes.catalog import (
    AudienceCreate,
    AudiencePreviewOptions,
    AudiencePreviewPublic,
    AudiencePublic,
    AudienceUpdate,
    DestinationCheck,
    DestinationCreate,
    DestinationPublic,
    DestinationTypePublic,
    DestinationUpdate,
    ModelCreate,
    ModelPublic,
    ModelUpdate,
    SourceCheck,
    SourceCreate,
    SourcePublic,
    SourceUpdate,
    SplitGroupPublic,
    SplitGroupsReplace,
)
from models.shapes.run import RowResultPublic, SyncRunEventPublic, SyncRunPublic, TriggerOptions
from models.shapes.workspace import (
    AuditEntryPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    WorkspacePublic,
)
from rest_compat.endpoint import WORKSPACE_PATH, Endpoint, Handler
from rest_compat.handlers import (
    audience_syncs,
    audiences,
    audit_log,
    destination_types,
    destinations,
    parent_models,
    sources,
    split_groups,
    sync_runs,
    tokens,
    workspaces,
)
from rest_compat.query import AFTER, PAGE, ROW_STATUS
from rest_compat.schemas import Deleted

WS = WORKSPACE_PATH
SYNCS = f"{WS}/audience-syncs"
SYNC = f"{SYNCS}/{{syncId}}"
RUN = f"{WS}/runs/{{runId}}"
#: Trigger and cancel conflict with the run's state (an active run, a finished run).
RUN_ENGINE = (409,)


def crud(
    *,
    tag: str,
    noun: str,
    item_id: str,
    public: type[BaseModel],
    create: type[BaseModel],
    update: type[BaseModel],
    handlers: tuple[Handler, Handler, Handler, Handler, Handler],
) -> tuple[Endpoint, ...]:
    """List, create, get, update and delete of one of the resources the contract implies."""
    collection, item = f"{WS}/{tag}", f"{WS}/{tag}/{{{item_id}}}"
    list_, create_, get_, update_, delete_ = handlers
    return (
        Endpoint("GET", collection, list_, f"List {noun}s", tag, public, many=True, query=PAGE),
        Endpoint("POST", collection, create_, f"Create a {noun}", tag, public, 201, body=create),
        Endpoint("GET", item, get_, f"Get a {noun}", tag, public),
        Endpoint(
            "PUT",
            item,
            update_,
            f"Update a {noun}",
            tag,
            public,
            body=update,
            nullable=(),
            description="Only the fields given change.",
        ),
        Endpoint(
            "DELETE",
            item,
            delete_,
            f"Delete a {noun}",
            tag,
            Deleted,
            also=(409,),
            description="Refused (409) while another object uses it.",
        ),
    )


AUDIENCE_SYNC_ENDPOINTS = (
    Endpoint(
        "GET",
        SYNCS,
        audience_syncs.list_audience_syncs,
        "List all audience syncs",
        "audience-syncs",
        AudienceSyncPublic,
        many=True,
        query=PAGE,
    ),
    Endpoint(
        "POST",
        SYNCS,
        audience_syncs.create_audience_sync,
        "Create an audience sync",
        "audience-syncs",
        AudienceSyncPublic,
        201,
        body=AudienceSyncCreate,
    ),
    Endpoint(
        "GET",
        SYNC,
        audience_syncs.get_audience_sync,
        "Get an audience sync",
        "audience-syncs",
        AudienceSyncPublic,
    ),
    Endpoint(
        "PUT",
        SYNC,
        audience_syncs.update_audience_sync,
        "Update an audience sync",
        "audience-syncs",
        AudienceSyncPublic,
        body=AudienceSyncUpdate,
        nullable=SYNC_NULLABLE_FIELDS,
        description="Only the fields given change.",
    ),
    Endpoint(
        "DELETE",
        SYNC,
        audience_syncs.delete_audience_sync,
        "Delete an audience sync",
        "audience-syncs",
        Deleted,
        also=(409,),
        description="Deletes its runs and state too; refused (409) while a run is active.",
    ),
    Endpoint(
        "POST",
        f"{SYNC}/trigger",
        sync_runs.trigger_sync_run,
        "Trigger a sync run",
        "audience-syncs",
        SyncRunPublic,
        201,
        body=TriggerOptions,
        body_required=False,
        also=RUN_ENGINE,
        description="Queues a run; 409 (naming the active run) while one is queued or running.",
    ),
    Endpoint(
        "GET",
        f"{SYNC}/runs",
        sync_runs.list_sync_runs,
        "List sync runs",
        "audience-syncs",
        SyncRunPublic,
        many=True,
        query=PAGE,
        description="Newest first.",
    ),
    Endpoint(
        "GET",
        f"{SYNC}/runs/{{runId}}",
        sync_runs.get_sync_run,
        "Get a sync run",
        "audience-syncs",
        SyncRunPublic,
    ),
)

RUN_ENDPOINTS = (
    Endpoint(
        "POST",
        f"{RUN}/cancel",
        sync_runs.cancel_sync_run,
        "Cancel a run",
        "runs",
        SyncRunPublic,
        also=RUN_ENGINE,
        description="Cancels a queued run at once, asks a running one to stop after its batch.",
    ),
    Endpoint(
        "GET",
        f"{RUN}/events",
        sync_runs.list_run_events,
        "List a run's events",
        "runs",
        SyncRunEventPublic,
        many=True,
        query=(AFTER,),
        description="In sequence order, at most 1000 per call; continue with `after`. With "
        "`Accept: text/event-stream` the answer is a live stream of Server-Sent Events "
        "instead (`id: <seq>`, `event: <type>`, `data: <the event's JSON>`): the stored "
        "events after `after` (or `Last-Event-ID`), then live ones, ending after the run's "
        "terminal status event.",
        event_stream=True,
    ),
    Endpoint(
        "GET",
        f"{RUN}/rows",
        sync_runs.list_row_results,
        "List a run's row outcomes",
        "runs",
        RowResultPublic,
        many=True,
        query=(ROW_STATUS, *PAGE),
    ),
)

CATALOG_ENDPOINTS = (
    *crud(
        tag="sources",
        noun="source",
        item_id="sourceId",
        public=SourcePublic,
        create=SourceCreate,
        update=SourceUpdate,
        handlers=(
            sources.list_sources,
            sources.create_source,
            sources.get_source,
            sources.update_source,
            sources.delete_source,
        ),
    ),
    *crud(
        tag="models",
        noun="model",
        item_id="modelId",
        public=ModelPublic,
        create=ModelCreate,
        update=ModelUpdate,
        handlers=(
            parent_models.list_models,
            parent_models.create_model,
            parent_models.get_model,
            parent_models.update_model,
            parent_models.delete_model,
        ),
    ),
    *crud(
        tag="audiences",
        noun="audience",
        item_id="audienceId",
        public=AudiencePublic,
        create=AudienceCreate,
        update=AudienceUpdate,
        handlers=(
            audiences.list_audiences,
            audiences.create_audience,
            audiences.get_audience,
            audiences.update_audience,
            audiences.delete_audience,
        ),
    ),
    *crud(
        tag="destinations",
        noun="destination",
        item_id="destinationId",
        public=DestinationPublic,
        create=DestinationCreate,
        update=DestinationUpdate,
        handlers=(
            destinations.list_destinations,
            destinations.create_destination,
            destinations.get_destination,
            destinations.update_destination,
            destinations.delete_destination,
        ),
    ),
)

AUDIENCE = f"{WS}/audiences/{{audienceId}}"
ENGINE_ENDPOINTS = (
    Endpoint(
        "POST",
        f"{WS}/sources/{{sourceId}}/check",
        sources.check_source,
        "Check a source's connection",
        "sources",
        SourceCheck,
        also=(422,),
        description="Connects and runs a trivial query; a failure is a 422 naming `config.url` "
        "with the database's reason (credentials removed). Viewers may check.",
    ),
    Endpoint(
        "POST",
        f"{WS}/destinations/{{destinationId}}/check",
        destinations.check_destination,
        "Check a destination's config and credentials",
        "destinations",
        DestinationCheck,
        also=(422,),
        description="Builds the connector and lets it test the stored config (a webhook's "
        "URL against the private-address rule, a vendor's credentials); a failure, or a type "
        "without a connector yet, is a 422 naming `config` with the reason (never the "
        "credentials). Viewers may check.",
    ),
    Endpoint(
        "POST",
        f"{WS}/models/{{modelId}}/refresh",
        parent_models.refresh_model,
        "Introspect a model's columns again",
        "models",
        ModelPublic,
        also=(422,),
        description="A model that no longer runs is a 422 naming `query` or `table`.",
    ),
    Endpoint(
        "POST",
        f"{AUDIENCE}/preview",
        audiences.preview_audience,
        "Preview an audience",
        "audiences",
        AudiencePreviewPublic,
        body=AudiencePreviewOptions,
        body_required=False,
        description="The size, a sample (at most 100 members in key order, the chosen "
        "columns; default all) and each split group's size, computed on the source now.",
    ),
    Endpoint(
        "GET",
        f"{AUDIENCE}/split-groups",
        split_groups.list_split_groups,
        "List an audience's split groups",
        "audiences",
        SplitGroupPublic,
        many=True,
    ),
    Endpoint(
        "PUT",
        f"{AUDIENCE}/split-groups",
        split_groups.replace_split_groups,
        "Replace an audience's split groups",
        "audiences",
        SplitGroupPublic,
        many=True,
        body=SplitGroupsReplace,
        also=(409,),
        description="The array replaces the whole set; percentages (above 0, two decimals at "
        "most) sum to 100, `[]` removes the split. A group keeps its id while its name stays; "
        "changing percentages moves as few members as possible. A group a sync targets can be "
        "neither removed nor made a holdout (409).",
    ),
)

ADMIN_ENDPOINTS = (
    Endpoint(
        "GET",
        f"{WS}/tokens",
        tokens.list_tokens,
        "List API tokens (admins)",
        "tokens",
        TokenPublic,
        many=True,
    ),
    Endpoint(
        "POST",
        f"{WS}/tokens",
        tokens.create_token,
        "Mint an API token (admins)",
        "tokens",
        TokenCreated,
        201,
        body=TokenCreate,
        description="The secret `token` is in this response and never again.",
    ),
    Endpoint(
        "DELETE",
        f"{WS}/tokens/{{tokenId}}",
        tokens.revoke_token,
        "Revoke an API token (admins)",
        "tokens",
        TokenPublic,
        description="Idempotent; the token stops working at once.",
    ),
    Endpoint(
        "GET",
        f"{WS}/audit-log",
        audit_log.list_audit_log,
        "Read the audit log (admins)",
        "audit-log",
        AuditEntryPublic,
        many=True,
        query=PAGE,
        description="Newest first; secrets are redacted.",
    ),
)

#: Outside any workspace: the same for every caller with a valid token.
CATALOGUE_ENDPOINTS = (
    Endpoint(
        "GET",
        "/destination-types",
        destination_types.list_destination_types,
        "List the destination types",
        "destination-types",
        DestinationTypePublic,
        many=True,
        description="Every type a destination may have: its config fields (secret ones are "
        "write-only), the fields a sync may map to (identifiers, normalisation, hashing), "
        "batch and rate limits, the `on_exit` values it supports, and whether a connector "
        "exists yet. Any valid token may read it.",
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", WS, workspaces.get_workspace, "Get the workspace", "workspaces", WorkspacePublic
    ),
    *AUDIENCE_SYNC_ENDPOINTS,
    *RUN_ENDPOINTS,
    *CATALOG_ENDPOINTS,
    *ENGINE_ENDPOINTS,
    *ADMIN_ENDPOINTS,
    *CATALOGUE_ENDPOINTS,
)
