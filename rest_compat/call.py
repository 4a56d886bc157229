"""One authenticated REST call: reading the request (body, path ids, headers) into what a
service function takes."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from app.context import ServiceContext
from app.errors import BadRequest, FieldError, NotFound
from rest_compat.errors import PayloadTooLarge

#: What each path id names, for "… not found" messages and the OpenAPI document.
PATH_IDS = {
    "id": "workspace",
    "syncId": "audience sync",
    "runId": "sync run",
    "sourceId": "source",
    "modelId": "model",
    "audienceId": "audience",
    "destinationId": "destination",
    "tokenId": "api token",
}
WORKSPACE_HEADER = "X-Workspace-ID"
#: Deeper JSON is refused up front: no body of this API nests anywhere near it.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Call:
    """What a handler gets: the service context, the path's workspace, and the parsed input."""

    ctx: ServiceContext
    #: The path's workspace; None on the endpoints outside `/workspaces/{id}`.
    scope: uuid.UUID | None
    path: Mapping[str, str]
    #: The endpoint's declared query parameters, named as its service function's arguments.
    query: Mapping[str, Any]
    #: The parsed JSON body; None when the request had none.
    body: object
    #: The request's headers (content negotiation: `Accept`, `Last-Event-ID`).
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def workspace_id(self) -> uuid.UUID:
        if self.scope is None:
            raise LookupError("an endpoint outside /workspaces/{id} has no workspace")
        return self.scope

    def path_id(self, name: str) -> uuid.UUID:
        return parse_path_id(self.path, name)


def parse_path_id(path: Mapping[str, str], name: str) -> uuid.UUID:
    """A malformed id names nothing that exists: 404, like an id of another workspace."""
    raw = path[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound.of(PATH_IDS[name], raw[:100]) from None


def check_workspace_header(value: str | None, workspace_id: uuid.UUID) -> None:
    """When given, `X-Workspace-ID` must name the path's workspace."""
    if value is None:
        return
    try:
        named = uuid.UUID(value.strip())
    except ValueError:
        raise BadRequest(
            f"{WORKSPACE_HEADER} must be a workspace id (a UUID)",
            [FieldError(WORKSPACE_HEADER, "not a UUID")],
        ) from None
    if named != workspace_id:
        raise BadRequest(
            f"{WORKSPACE_HEADER} {named} differs from the workspace {workspace_id} of the path",
            [FieldError(WORKSPACE_HEADER, "must equal the workspace id of the path")],
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than {limit} bytes", [FieldError("body", f"at most {limit} bytes")]
    )


def parse_json(raw: bytes) -> object:
    """The body as JSON (None when empty); malformed JSON is a 400 naming `body`.

    Besides syntax, NaN/Infinity, lone surrogates and absurd nesting are refused here: no
    database or JSON response could carry them back.
    """
    if not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise _malformed(_reason(exc)) from None
    _check_tree(value)
    return value


def _malformed(reason: str) -> BadRequest:
    return BadRequest(f"the body is not valid JSON: {reason}", [FieldError("body", reason)])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_JSON_DEPTH} levels"
    return str(exc)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _check_tree(value: object) -> None:
    """Walk the parsed body without recursion: depth and text that cannot be encoded."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _malformed(f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = list(item.items()) if isinstance(item, dict) else [(None, v) for v in item]
            for key, child in children:
                if key is not None:
                    _check_text(key)
                stack.append((child, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _malformed("a string holds a lone UTF-16 surrogate") from None
