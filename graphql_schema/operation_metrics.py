"""Per-operation Prometheus metrics: name (or "anonymous"), type, outcome and latency."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from app.metrics import Metrics

ANONYMOUS = "anonymous"
#: Label used once `MAX_OPERATION_NAMES` distinct names were seen (label cardinality).
OTHER = "other"
MAX_OPERATION_NAMES = 500


class OperationNames:
    """The operation-name labels handed out so far; clients choose names, so bound them."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name:
            return ANONYMOUS
        if name not in self._seen:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(name)
        return name


class OperationMetrics(SchemaExtension):
    def __init__(self, metrics: Metrics, names: OperationNames) -> None:
        self.metrics = metrics
        self.names = names

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        failed = False
        try:
            yield
        except Exception:  # the request was refused (e.g. a mutation over GET)
            failed = True
            raise
        finally:
            self._record(started, failed)

    def _record(self, started: float, failed: bool) -> None:
        context = self.execution_context
        try:
            kind = context.operation_type.value
            name = self.names.label(context.operation_name)
        except RuntimeError:  # no document: it did not parse, or names no operation
            kind, name = "unknown", ANONYMOUS
        result = context.result
        outcome = "error" if failed or (result is not None and result.errors) else "ok"
        self.metrics.graphql_operations.labels(name, kind, outcome).inc()
        self.metrics.graphql_latency.labels(name, kind).observe(time.perf_counter() - started)
