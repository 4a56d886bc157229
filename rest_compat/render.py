"""Rendering service results with the public shapes, and the JSON responses that carry them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import SQLModel
from starlette.responses import JSONResponse

from rest_compat.schemas import Deleted


def present(shape: type[BaseModel], row: SQLModel, **overrides: Any) -> dict[str, Any]:
    """`row` through its public shape; `overrides` supply fields the row keeps differently."""
    source: Any = {**row.model_dump(), **overrides} if overrides else row
    return shape.model_validate(source).model_dump(mode="json")


def ok(content: Any) -> JSONResponse:
    return JSONResponse(content)


def created(content: Any) -> JSONResponse:
    return JSONResponse(content, status_code=201)


def deleted() -> JSONResponse:
    return JSONResponse(Deleted().model_dump(mode="json"))
