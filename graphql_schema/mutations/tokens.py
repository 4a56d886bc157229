"""Mint and revoke API tokens (admins)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import UNSET

from app.services import tokens
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id
from graphql_schema.types.enums import Role
from graphql_schema.types.token import ApiToken, ApiTokenCreated


@strawberry.input(description="Without email: a token for yourself, with your own role.")
class ApiTokenCreateInput:
    name: str
    email: str | None = strawberry.field(
        default=UNSET, description="Mint for this member (added with `role` when new)."
    )
    role: Role | None = UNSET
    expires_at: datetime | None = UNSET


@strawberry.type
class TokenMutations:
    @strawberry.mutation(description="The secret is in the answer, and never shown again.")
    async def create_api_token(
        self, info: Info, workspace_id: strawberry.ID, input: ApiTokenCreateInput
    ) -> ApiTokenCreated | None:
        view = await info.context.call(
            tokens.create_token,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        assert view.secret is not None  # minting always returns the secret
        return ApiTokenCreated(token=ApiToken.from_view(view), secret=view.secret)

    @strawberry.mutation(description="Revoke a token (idempotent); it stops working at once.")
    async def revoke_api_token(self, info: Info, id: strawberry.ID) -> ApiToken | None:
        view = await info.context.call(
            tokens.revoke_token,
            workspace_id=await info.context.workspace_id(),
            token_id=parse_id(id, "id"),
        )
        return ApiToken.from_view(view)
