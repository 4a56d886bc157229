"""Bounds on what one document may ask for (DESIGN §3.3). Page sizes are bounded by the
services (`first` ≤ 100)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import ASTValidationRule
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

#: Deep enough for syncs → runs → counts and audience → model → source.
MAX_DEPTH = 10
MAX_ALIASES = 15
#: Comfortably above the standard introspection query (about 300 tokens).
MAX_TOKENS = 2000

#: strawberry's depth and alias rules, built once: its limiter extensions define a new rule
#: class per instance, that is per operation, and a subscription keeps its extensions (and
#: so those classes, about 5 KB) for as long as it lives (issue 5).
_DEPTH_RULE = QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules[0]
_ALIASES_RULE = MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules[0]


class DocumentLimits(AddValidationRules):
    """All the bounds in one extension: the token limit of the parser (as strawberry's
    `MaxTokensLimiter`), then depth, aliases and, when it is off, introspection."""

    def __init__(self, rules: list[type[ASTValidationRule]], max_tokens: int) -> None:
        super().__init__(rules)
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield from super().on_operation()


def limit_extensions(*, introspection: bool) -> list[Callable[[], SchemaExtension]]:
    rules: list[type[ASTValidationRule]] = [_DEPTH_RULE, _ALIASES_RULE]
    if not introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [lambda: DocumentLimits(rules, MAX_TOKENS)]
