"""The schema: Query and Mutation roots, scalars, and the extensions every operation runs
through (limits, error codes and masking, metrics)."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.metrics import Metrics
from graphql_schema.errors import ErrorCodes, MaskUnexpectedErrors, is_unexpected
from graphql_schema.limits import limit_extensions
from graphql_schema.mutations import Mutation
from graphql_schema.operation_metrics import OperationMetrics, OperationNames
from graphql_schema.queries import Query
from graphql_schema.scalars import SCALAR_MAP


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log only bugs; an error the caller caused (bad input, not found …) is no event."""
        unexpected = [error for error in errors if is_unexpected(error)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(*, metrics: Metrics | None = None, introspection: bool = True) -> GatewaySchema:
    extensions: list[Callable[[], SchemaExtension]] = [
        *limit_extensions(introspection=introspection),
        ErrorCodes,
        MaskUnexpectedErrors,
    ]
    if metrics is not None:
        names = OperationNames()
        extensions.append(lambda: OperationMetrics(metrics, names))
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=extensions,
    )
