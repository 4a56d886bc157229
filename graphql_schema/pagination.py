"""Relay connections over the services' offset pages, with opaque cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import strawberry
from sqlmodel import SQLModel

from app.errors import InvalidInput
from app.services.lookup import Page

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT", bound=SQLModel)

DEFAULT_PAGE_SIZE = 20
_CURSOR_PREFIX = "offset:"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The offset a cursor of this API points at; anything else is bad input on `after`."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit():
        raise InvalidInput.field("after", f"{cursor!r} is not a cursor of this list")
    return int(number)


@dataclass(frozen=True)
class Window:
    """`first`/`after` as the offset and limit a service list takes (it checks `first`)."""

    offset: int
    limit: int

    @classmethod
    def of(cls, first: int, after: str | None) -> Window:
        return cls(offset=0 if after is None else decode_cursor(after) + 1, limit=first)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def from_page(cls, page: Page[RowT], node: Callable[[RowT], NodeT]) -> Connection[NodeT]:
        edges = [
            Edge(cursor=encode_cursor(page.offset + index), node=node(row))
            for index, row in enumerate(page.items)
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.offset + len(edges) < page.total,
                has_previous_page=page.offset > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )
