"""Workspaces, accounts and the first admin (bootstrap)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.auth import mint_token
from app.context import ServiceContext
from app.errors import InvalidInput
from app.services.lookup import authorize
from models import Account, ApiToken, AuditLog, Membership, Workspace
from models.enums import Role


@dataclass(frozen=True)
class Bootstrapped:
    workspace: Workspace
    account: Account
    token: str


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:80] or "workspace"


async def get_or_create_account(session: AsyncSession, email: str) -> Account:
    email = email.strip().lower()
    account = (
        await session.execute(select(Account).where(Account.email == email))
    ).scalar_one_or_none()
    if account is None:
        account = Account(email=email, name=email.split("@")[0])
        session.add(account)
        await session.flush()
    return account


async def bootstrap(session: AsyncSession, *, workspace_name: str, email: str) -> Bootstrapped:
    """Create (or reuse) the workspace and an admin account, and mint a token for it."""
    name = workspace_name.strip()
    if not name:
        raise InvalidInput.field("workspace", "must not be empty")
    if "@" not in email:
        raise InvalidInput.field("email", "must be an email address")
    slug = slugify(name)
    workspace = (
        await session.execute(select(Workspace).where(Workspace.slug == slug))
    ).scalar_one_or_none()
    if workspace is None:
        workspace = Workspace(name=name, slug=slug)
        session.add(workspace)
        await session.flush()
    account = await get_or_create_account(session, email)
    membership = (
        await session.execute(
            select(Membership).where(
                Membership.workspace_id == workspace.id, Membership.account_id == account.id
            )
        )
    ).scalar_one_or_none()
    if membership is None:
        session.add(Membership(workspace_id=workspace.id, account_id=account.id, role=Role.admin))
    else:
        membership.role = Role.admin
    minted = mint_token()
    token = ApiToken(
        account_id=account.id,
        workspace_id=workspace.id,
        name="bootstrap",
        token_hash=minted.token_hash,
        prefix=minted.prefix,
    )
    session.add(token)
    session.add(
        AuditLog(
            workspace_id=workspace.id,
            actor=str(account.id),
            action="workspace.bootstrap",
            target_type="api token",
            target_id=str(token.id),
            detail={"email": account.email},
        )
    )
    await session.commit()
    return Bootstrapped(workspace=workspace, account=account, token=minted.secret)


async def get_workspace(ctx: ServiceContext, *, workspace_id: uuid.UUID) -> Workspace:
    authorize(ctx, workspace_id)
    workspace = await ctx.session.get(Workspace, workspace_id)
    assert workspace is not None  # the principal's membership guarantees it
    return workspace


async def get_viewer(ctx: ServiceContext) -> tuple[Account, Workspace]:
    """The calling account and the workspace its token acts in."""
    account = await ctx.session.get(Account, ctx.principal.account_id)
    workspace = await ctx.session.get(Workspace, ctx.principal.workspace_id)
    assert account is not None and workspace is not None
    return account, workspace
