"""Parent models; the stored `table_name` is the public `table`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.services import parent_models
from models import ParentModel
from models.shapes.catalog import ModelPublic
from rest_compat.call import Call
from rest_compat.render import created, deleted, ok, present


def _public(model: ParentModel) -> dict[str, Any]:
    return present(ModelPublic, model, table=model.table_name)


async def list_models(call: Call) -> Response:
    page = await parent_models.list_models(call.ctx, workspace_id=call.workspace_id, **call.query)
    return ok([_public(model) for model in page.items])


async def create_model(call: Call) -> Response:
    model = await parent_models.create_model(
        call.ctx, workspace_id=call.workspace_id, data=call.body
    )
    return created(_public(model))


async def get_model(call: Call) -> Response:
    model = await parent_models.get_model(
        call.ctx, workspace_id=call.workspace_id, model_id=call.path_id("modelId")
    )
    return ok(_public(model))


async def update_model(call: Call) -> Response:
    model = await parent_models.update_model(
        call.ctx, workspace_id=call.workspace_id, model_id=call.path_id("modelId"), data=call.body
    )
    return ok(_public(model))


async def refresh_model(call: Call) -> Response:
    model = await parent_models.refresh_model_columns(
        call.ctx, workspace_id=call.workspace_id, model_id=call.path_id("modelId")
    )
    return ok(_public(model))


async def delete_model(call: Call) -> Response:
    await parent_models.delete_model(
        call.ctx, workspace_id=call.workspace_id, model_id=call.path_id("modelId")
    )
    return deleted()
