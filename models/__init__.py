"""SQLModel tables of the domain (DESIGN §2)."""

from models.audience_sync import AudienceSync
from models.audit import AuditLog
from models.catalog import Audience, Destination, ParentModel, Source, SplitGroup
from models.run import RowResult, SyncedMember, SyncRun, SyncRunEvent
from models.workspace import Account, ApiToken, Membership, Workspace

__all__ = [
    "Account",
    "ApiToken",
    "Audience",
    "AudienceSync",
    "AuditLog",
    "Destination",
    "Membership",
    "ParentModel",
    "RowResult",
    "Source",
    "SplitGroup",
    "SyncRun",
    "SyncRunEvent",
    "SyncedMember",
    "Workspace",
]
