"""Bounds on what one document may ask for (DESIGN §3.3). Page sizes are bounded by the
services (`first` ≤ 100)."""

from __future__ import annotations

from collections.abc import Callable

from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

#: Deep enough for syncs → runs → counts and audience → model → source.
MAX_DEPTH = 10
MAX_ALIASES = 15
#: Comfortably above the standard introspection query (about 300 tokens).
MAX_TOKENS = 2000


def limit_extensions(*, introspection: bool) -> list[Callable[[], SchemaExtension]]:
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return extensions
