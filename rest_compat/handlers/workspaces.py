"""The workspace itself."""

from __future__ import annotations

from starlette.responses import Response

from app.services import workspaces
from models.shapes.workspace import WorkspacePublic
from rest_compat.call import Call
from rest_compat.render import ok, present


async def get_workspace(call: Call) -> Response:
    workspace = await workspaces.get_workspace(call.ctx, workspace_id=call.workspace_id)
    return ok(present(WorkspacePublic, workspace))
