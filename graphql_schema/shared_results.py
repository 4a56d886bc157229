"""Execute and encode a subscription event once, send it to every subscriber (issue 5).

Subscribers of the same run that sent the same document (and the same variables, apart from
those only the root field's arguments use: `runId`, `after`) get identical `next` payloads
for the same event. A root value that says so (`shared_result_key()`, for a type whose
fields depend only on the event, never on the caller) is executed once per (document,
operation, variables, event) and the result reused; the transport then encodes its payload
once too, and only the message `id` differs per socket.

Nothing about who may see what changes: each subscriber's own stream (authorised when it
subscribed) decides which events reach it; this only saves re-executing the selection set
over an event that stream already yielded. Results with errors are never shared (each
subscriber's errors are logged and masked on their own).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution import Executor
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    Node,
    OperationDefinitionNode,
    VariableNode,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

#: Distinct (document, variables, event) results kept; a run's event reaches all its
#: subscribers within a few hundred milliseconds, so a small LRU is enough.
MAX_RESULTS = 256


class SharedResults:
    """A bounded LRU of execution results and, lazily, their encoded `payload` JSON."""

    def __init__(self, limit: int = MAX_RESULTS) -> None:
        self.limit = limit
        self._results: OrderedDict[Hashable, GraphQLExecutionResult] = OrderedDict()
        #: id(result.data) -> (data, encoded payload or None); the data is held, so its
        #: id cannot be reused while the entry lives.
        self._payloads: dict[int, tuple[Any, str | None]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> GraphQLExecutionResult | None:
        result = self._results.get(key)
        if result is not None:
            self._results.move_to_end(key)
            self.hits += 1
        return result

    def put(self, key: Hashable, result: GraphQLExecutionResult) -> None:
        self.misses += 1
        self._results[key] = result
        self._payloads[id(result.data)] = (result.data, None)
        while len(self._results) > self.limit:
            _, evicted = self._results.popitem(last=False)
            self._payloads.pop(id(evicted.data), None)

    def encoded_payload(self, data: Any) -> str | None:
        """`{"data": …}` as JSON, encoded once, if `data` is a shared result's; else None."""
        entry = self._payloads.get(id(data))
        if entry is None or entry[0] is not data:
            return None
        if entry[1] is None:
            entry = (data, json.dumps({"data": data}, separators=(",", ":")))
            self._payloads[id(data)] = entry
        return entry[1]

    def clear(self) -> None:
        self._results.clear()
        self._payloads.clear()


#: The process's shared results (keys include the document text, so schemas may share it).
SHARED = SharedResults()


def _variables_beyond_root_arguments(
    operation: OperationDefinitionNode, fragments: Iterable[FragmentDefinitionNode]
) -> frozenset[str] | None:
    """The variables the document uses anywhere except in the arguments of the operation's
    root fields (those only pick the stream); None when that is not simple to tell."""
    names: set[str] = set()

    def walk(node: Any, skip_arguments: bool = False) -> None:
        if isinstance(node, VariableNode):
            names.add(node.name.value)
            return
        if isinstance(node, Node):
            for key in node.keys:
                if skip_arguments and key == "arguments":
                    continue
                walk(getattr(node, key, None))
        elif isinstance(node, tuple | list):
            for item in node:
                walk(item)

    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None  # a fragment at the root: keep it simple, do not share
        walk(selection, skip_arguments=True)
    walk(operation.directives)
    for fragment in fragments:
        walk(fragment)
    return frozenset(names)


def _base_key(executor: Executor) -> Hashable | None:
    """What, besides the event, a subscription's results depend on: the document, the
    operation, and the variables beyond the root field's arguments; None: do not share."""
    operation = executor.operation
    if operation.loc is None:
        return None
    used = _variables_beyond_root_arguments(operation, executor.fragment_definitions.values())
    if used is None:
        return None
    coerced = executor.variable_values.coerced
    try:
        variables = json.dumps(
            {name: coerced.get(name) for name in sorted(used)}, default=str, sort_keys=True
        )
    except (TypeError, ValueError):
        return None
    operation_name = operation.name.value if operation.name else None
    return (operation.loc.source.body, operation_name, variables)


_UNSET: Any = object()


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, reusing the result of an event another subscriber with the
    same document and variables already executed.

    graphql-core builds one executor per subscription and a copy of it per event
    (`build_per_event_executor`); for a shared result the copy is skipped altogether."""

    #: The subscription's `_base_key`, computed at its first shareable event.
    _shared_base: Hashable | None = _UNSET
    #: Set on a per-event copy whose result others may reuse.
    _result_key: Hashable | None = None

    def build_per_event_executor(self, payload: Any) -> Any:
        shared_key = getattr(payload, "shared_result_key", None)
        if shared_key is None:
            return super().build_per_event_executor(payload)
        if self._shared_base is _UNSET:
            self._shared_base = _base_key(self)
        if self._shared_base is None:
            return super().build_per_event_executor(payload)
        key = (self._shared_base, type(payload).__name__, shared_key())
        cached = SHARED.get(key)
        if cached is not None:
            return _Executed(cached)
        executor = cast("SharedEventExecutor", super().build_per_event_executor(payload))
        executor._result_key = key
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        key = self._result_key
        if key is not None and isinstance(result, GraphQLExecutionResult) and not result.errors:
            SHARED.put(key, result)
        return result


class _Executed:
    """Stands in for a per-event executor whose result is already known
    (`execute_subscription_event` only calls `execute_operation`)."""

    __slots__ = ("result",)

    def __init__(self, result: GraphQLExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> GraphQLExecutionResult:
        return self.result
