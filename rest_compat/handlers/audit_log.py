"""The audit log (admins), newest first."""

from __future__ import annotations

from starlette.responses import Response

from app.services import audit
from models.shapes.workspace import AuditEntryPublic
from rest_compat.call import Call
from rest_compat.render import ok, present


async def list_audit_log(call: Call) -> Response:
    page = await audit.list_audit_log(call.ctx, workspace_id=call.workspace_id, **call.query)
    return ok([present(AuditEntryPublic, entry) for entry in page.items])
