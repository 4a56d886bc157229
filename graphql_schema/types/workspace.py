"""Workspaces, accounts and the viewer (who is calling, where, with which role)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_schema.scalars import to_id
from graphql_schema.types.enums import Role
from models import Account as AccountRow
from models import Workspace as WorkspaceRow


@strawberry.type(description="A tenant; every other object belongs to exactly one workspace.")
class Workspace:
    id: strawberry.ID
    name: str
    slug: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: WorkspaceRow) -> Workspace:
        return cls(id=to_id(row.id), name=row.name, slug=row.slug, created_at=row.created_at)


@strawberry.type
class Account:
    id: strawberry.ID
    email: str
    name: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(id=to_id(row.id), email=row.email, name=row.name, created_at=row.created_at)


@strawberry.type(description="The caller: the token's account, its workspace and its role there.")
class Viewer:
    account: Account
    workspace: Workspace
    role: Role
