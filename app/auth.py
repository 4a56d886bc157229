"""API tokens and the principal a request acts as."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.errors import Forbidden, Unauthenticated
from models import ApiToken, Membership
from models.columns import utcnow
from models.enums import Role

TOKEN_PREFIX = "ssk_"
#: How stale `last_used_at` may get before a request refreshes it (saves a write per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account acting in one workspace with one role, through one token."""

    account_id: uuid.UUID
    workspace_id: uuid.UUID
    role: Role
    token_id: uuid.UUID | None = None

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise Forbidden(
                f"this action needs the {role.value} role; the token has {self.role.value}"
            )

    def require_workspace(self, workspace_id: uuid.UUID) -> None:
        if workspace_id != self.workspace_id:
            raise Forbidden(f"the token is not valid for workspace {workspace_id}")


@dataclass(frozen=True)
class MintedToken:
    secret: str
    token_hash: str
    prefix: str


def mint_token() -> MintedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return MintedToken(secret=secret, token_hash=hash_token(secret), prefix=secret[:12])


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def tokens_with_role() -> Any:
    """Tokens joined with the role their account holds in the token's workspace."""
    return select(ApiToken, Membership.role).join(
        Membership,
        and_(
            col(Membership.account_id) == col(ApiToken.account_id),
            col(Membership.workspace_id) == col(ApiToken.workspace_id),
        ),
    )


def parse_bearer(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing Authorization: Bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(
    session: AsyncSession, secret: str, now: datetime | None = None
) -> Principal:
    """Resolve a bearer secret to a principal; any failure is the same 401."""
    now = now or utcnow()
    row = (
        await session.execute(tokens_with_role().where(ApiToken.token_hash == hash_token(secret)))
    ).first()
    if row is None:
        raise Unauthenticated("invalid or revoked token")
    token, role = row
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthenticated("invalid or revoked token")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(
            update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now)
        )
        await session.commit()
    return Principal(
        account_id=token.account_id,
        workspace_id=token.workspace_id,
        role=Role(role),
        token_id=token.id,
    )
