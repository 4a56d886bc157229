"""Shapes of workspaces, the viewer, API tokens and the audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import EmailStr, Field, field_validator

from models.enums import Role
from models.shapes.common import InputShape, NameStr, OutputShape, Timestamp


class WorkspacePublic(OutputShape):
    id: uuid.UUID
    name: str
    slug: str
    created_at: Timestamp


class TokenCreate(InputShape):
    """Mint a token for the caller, or (with `email`) for a member with `role`."""

    name: NameStr
    email: EmailStr | None = None
    role: Role | None = None
    expires_at: Timestamp | None = None

    @field_validator("expires_at")
    @classmethod
    def _representable_in_utc(cls, value: datetime | None) -> datetime | None:
        """Stored in UTC: an instant outside years 1..9999 there cannot be (OverflowError)."""
        if value is not None and value.tzinfo is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValueError("is outside years 1 to 9999 once in UTC") from None
        return value


class TokenPublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    account_id: uuid.UUID
    name: str
    prefix: str
    role: Role
    created_at: Timestamp
    last_used_at: Timestamp | None
    expires_at: Timestamp | None
    revoked_at: Timestamp | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret, shown this once")


class AuditEntryPublic(OutputShape):
    id: uuid.UUID
    workspace_id: uuid.UUID
    actor: str
    action: str
    target_type: str
    target_id: str
    at: Timestamp
    detail: dict[str, Any]
