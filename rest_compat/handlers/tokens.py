"""API tokens (admins): the secret is in the response to its creation and nowhere else."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.services import tokens
from app.services.tokens import TokenView
from models.shapes.workspace import TokenCreated, TokenPublic
from rest_compat.call import Call
from rest_compat.render import created, ok, present


def _public(view: TokenView) -> dict[str, Any]:
    return present(TokenPublic, view.token, role=view.role)


async def list_tokens(call: Call) -> Response:
    views = await tokens.list_tokens(call.ctx, workspace_id=call.workspace_id)
    return ok([_public(view) for view in views])


async def create_token(call: Call) -> Response:
    view = await tokens.create_token(call.ctx, workspace_id=call.workspace_id, data=call.body)
    return created(present(TokenCreated, view.token, role=view.role, token=view.secret))


async def revoke_token(call: Call) -> Response:
    view = await tokens.revoke_token(
        call.ctx, workspace_id=call.workspace_id, token_id=call.path_id("tokenId")
    )
    return ok(_public(view))
