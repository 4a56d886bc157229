"""API tokens: minted (shown once), listed and revoked by admins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import col, select

from app.auth import mint_token, tokens_with_role
from app.context import ServiceContext
from app.errors import InvalidInput
from app.services.audit import record_audit
from app.services.lookup import authorize, get_scoped
from app.services.workspaces import get_or_create_account
from app.validation import parse_input
from models import ApiToken, Membership
from models.columns import utcnow
from models.enums import Role
from models.shapes.workspace import TokenCreate

KIND = "api token"


@dataclass(frozen=True)
class TokenView:
    token: ApiToken
    role: Role
    #: The secret, present only right after minting.
    secret: str | None = None


async def list_tokens(ctx: ServiceContext, *, workspace_id: uuid.UUID) -> list[TokenView]:
    authorize(ctx, workspace_id, Role.admin)
    rows = await ctx.session.execute(
        tokens_with_role()
        .where(col(ApiToken.workspace_id) == workspace_id)
        .order_by(ApiToken.created_at, ApiToken.id)
    )
    return [TokenView(token=token, role=Role(role)) for token, role in rows.all()]


async def create_token(ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object) -> TokenView:
    """Mint a token for the caller, or for the member `email` (added with `role` if new)."""
    authorize(ctx, workspace_id, Role.admin)
    body = parse_input(
        TokenCreate,
        data,
        read_only=("id", "token", "prefix", "workspace_id"),
        nullable=("email", "role", "expires_at"),
    )
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise InvalidInput.field("expires_at", "needs a UTC offset, e.g. 2030-01-01T00:00:00Z")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise InvalidInput.field("expires_at", "must be in the future")
    if body.email is None:
        if body.role is not None and body.role != ctx.principal.role:
            raise InvalidInput.field(
                "role", "a token for yourself carries your own role; give email"
            )
        account_id, role = ctx.principal.account_id, ctx.principal.role
    else:
        account = await get_or_create_account(ctx.session, body.email)
        membership = (
            await ctx.session.execute(
                select(Membership).where(
                    Membership.workspace_id == workspace_id, Membership.account_id == account.id
                )
            )
        ).scalar_one_or_none()
        if membership is None:
            membership = Membership(
                workspace_id=workspace_id, account_id=account.id, role=body.role or Role.viewer
            )
        elif body.role is not None:
            membership.role = body.role
        ctx.session.add(membership)
        account_id, role = account.id, Role(membership.role)
    minted = mint_token()
    token = ApiToken(
        account_id=account_id,
        workspace_id=workspace_id,
        name=body.name,
        token_hash=minted.token_hash,
        prefix=minted.prefix,
        expires_at=body.expires_at,
    )
    ctx.session.add(token)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="api_token.create",
        target_type=KIND,
        target_id=token.id,
        detail={"name": token.name, "role": role.value, "account_id": str(account_id)},
    )
    await ctx.session.commit()
    return TokenView(token=token, role=role, secret=minted.secret)


async def revoke_token(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, token_id: uuid.UUID
) -> TokenView:
    """Revoke a token (idempotent); it stops working at once."""
    authorize(ctx, workspace_id, Role.admin)
    token = await get_scoped(ctx.session, ApiToken, token_id, workspace_id, KIND)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        ctx.session.add(token)
        record_audit(
            ctx,
            workspace_id=workspace_id,
            action="api_token.revoke",
            target_type=KIND,
            target_id=token.id,
            detail={"name": token.name},
        )
        await ctx.session.commit()
    role = (
        await ctx.session.execute(
            select(Membership.role).where(
                Membership.workspace_id == workspace_id, Membership.account_id == token.account_id
            )
        )
    ).scalar_one()
    return TokenView(token=token, role=Role(role))
