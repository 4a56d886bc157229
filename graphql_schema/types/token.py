"""API tokens: listed without their secret; the secret is shown once, at creation."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.services.tokens import TokenView
from graphql_schema.scalars import to_id
from graphql_schema.types.enums import Role


@strawberry.type
class ApiToken:
    id: strawberry.ID
    workspace_id: strawberry.ID
    account_id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The secret's first characters, to recognise it.")
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_view(cls, view: TokenView) -> ApiToken:
        token = view.token
        return cls(
            id=to_id(token.id),
            workspace_id=to_id(token.workspace_id),
            account_id=to_id(token.account_id),
            name=token.name,
            prefix=token.prefix,
            role=view.role,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


@strawberry.type(description="A new token and its secret; the secret is never shown again.")
class ApiTokenCreated:
    token: ApiToken
    secret: str
