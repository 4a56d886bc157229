"""The schema: Query, Mutation and Subscription roots, scalars, and the extensions every
operation runs through (limits, error codes and masking, metrics)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from app.metrics import Metrics
from graphql_schema.errors import ErrorCodes, MaskUnexpectedErrors, is_unexpected, present
from graphql_schema.limits import limit_extensions
from graphql_schema.mutations import Mutation
from graphql_schema.operation_metrics import OperationMetrics, OperationNames
from graphql_schema.queries import Query
from graphql_schema.scalars import SCALAR_MAP
from graphql_schema.shared_results import SharedEventExecutor, passes_plain_results
from graphql_schema.subscriptions import Subscription

#: Distinct document texts kept parsed.
PARSED_DOCUMENTS = 256

_parse = functools.lru_cache(maxsize=PARSED_DOCUMENTS)(parse)


class CachedParse(SchemaExtension):
    """One parsed document per distinct text (and parse options), shared by every request
    and subscriber that sends it. A text that does not parse is left to strawberry, which
    reports the error as usual (GRAPHQL_PARSE_FAILED)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            try:
                context.graphql_document = _parse(context.query, **context.parse_options)
            except (GraphQLError, TypeError):  # TypeError: options that cannot be hashed
                pass
        yield


class GatewaySchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Whether a subscription result without errors may skip the extensions'
        #: per-result hooks (`shared_results`' direct delivery): none of them changes it.
        self.passes_plain_results = passes_plain_results(self.get_extensions())

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only bugs; an error the caller caused (bad input, not found …) is no event."""
        unexpected = [error for error in errors if is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)
        if execution_context is not None and _is_subscription(execution_context):
            # A subscription's results bypass the operation hooks: code and mask them here.
            for index, error in enumerate(errors):
                if is_unexpected(error):
                    errors[index] = MaskUnexpectedErrors().anonymise_error(error)
                present(errors[index])


def _is_subscription(execution_context: ExecutionContext) -> bool:
    if execution_context.graphql_document is None:
        return False  # did not parse
    try:
        return execution_context.operation_type is OperationType.SUBSCRIPTION
    except RuntimeError:  # no operation to pick (an unknown operation name …)
        return False


def build_schema(*, metrics: Metrics | None = None, introspection: bool = True) -> GatewaySchema:
    extensions: list[Callable[[], SchemaExtension]] = [
        *limit_extensions(introspection=introspection),
        # One parsed document per distinct text (module-level LRU), not one per subscriber.
        CachedParse,
        ErrorCodes,
        MaskUnexpectedErrors,
    ]
    if metrics is not None:
        names = OperationNames()
        extensions.append(lambda: OperationMetrics(metrics, names))
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=extensions,
        execution_context_class=SharedEventExecutor,
    )
