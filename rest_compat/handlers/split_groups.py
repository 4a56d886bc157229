"""An audience's split groups: the whole set, read and replaced at once."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.services import split_groups
from models import SplitGroup
from models.shapes.catalog import SplitGroupPublic
from rest_compat.call import Call
from rest_compat.render import ok, present


def _public(group: SplitGroup) -> dict[str, Any]:
    return present(SplitGroupPublic, group, percentage=group.basis_points / 100)


async def list_split_groups(call: Call) -> Response:
    groups = await split_groups.list_split_groups(
        call.ctx, workspace_id=call.workspace_id, audience_id=call.path_id("audienceId")
    )
    return ok([_public(group) for group in groups])


async def replace_split_groups(call: Call) -> Response:
    groups = await split_groups.replace_split_groups(
        call.ctx,
        workspace_id=call.workspace_id,
        audience_id=call.path_id("audienceId"),
        data=call.body,
    )
    return ok([_public(group) for group in groups])
