"""The domain's closed sets as GraphQL enums (values as in REST: `mirror`, `queued` …).

The model enums themselves are registered, so a member added in `models.enums` appears in
the schema without a second list to keep in step. Import them from here so the
registration has happened.
"""

from __future__ import annotations

import strawberry

from models.enums import (
    DestinationType,
    OnExit,
    Role,
    RunPhase,
    RunStatus,
    RunTrigger,
    SourceType,
    SyncMode,
    SyncStatus,
)

for _enum in (
    DestinationType,
    OnExit,
    Role,
    RunPhase,
    RunStatus,
    RunTrigger,
    SourceType,
    SyncMode,
    SyncStatus,
):
    strawberry.enum(_enum)

__all__ = [
    "DestinationType",
    "OnExit",
    "Role",
    "RunPhase",
    "RunStatus",
    "RunTrigger",
    "SourceType",
    "SyncMode",
    "SyncStatus",
]
