"""Shapes that belong to the REST transport itself: the error envelope and the delete reply."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    """Every error response: `{"error": {"code", "message", "details": [{"field", "message"}]}}`."""

    error: ErrorBody


class Deleted(BaseModel):
    """What a successful DELETE answers (spec: `{"status": "deleted"}`)."""

    status: Literal["deleted"] = "deleted"
