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

Direct delivery goes one step further. A source stream that can hand its events over
(`DirectSource`: `syncRunEvents`) gets, from the subscription's executor, a function that
takes one of its root values, finds or executes the shared result, and writes its `next`
message through the operation's `Outlet` (the WebSocket transport sets one per operation,
in `OPERATION_OUTLET`). The stream calls it instead of yielding a caught-up live event, so
the event reaches every such subscriber from the one task that received it, without waking
each subscriber's task and passing the result through graphql-core's and strawberry's
per-result machinery. It applies only where that machinery has nothing to do for a plain
result (`passes_plain_results`); a result with errors, or one that cannot be produced at
once, takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
from collections import OrderedDict
from collections.abc import AsyncIterable, Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution import Executor
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    Node,
    OperationDefinitionNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

T = TypeVar("T")

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
        #: `next` messages written by direct delivery.
        self.delivered = 0
        #: (base key, root value, payload) of the last direct delivery: one event goes to
        #: many subscribers in a row, and each needs the same payload.
        self.last_delivered: tuple[Hashable | None, Any, str | None] = (None, None, None)
        #: One object per distinct base key, so that equal keys compare by identity.
        self._bases: dict[Hashable, Hashable] = {}

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

    def canonical_base(self, base: Hashable | None) -> Hashable | None:
        """The one stored object equal to `base` (kept for up to `limit` distinct keys)."""
        if base is None:
            return None
        found = self._bases.get(base)
        if found is None:
            if len(self._bases) >= self.limit:
                self._bases.clear()
            found = self._bases[base] = base
        return found

    def clear(self) -> None:
        self._results.clear()
        self._payloads.clear()
        self._bases.clear()
        self.last_delivered = (None, None, None)


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


class Outlet(Protocol):
    """Where one operation's messages go (the WebSocket transport implements it)."""

    def write_next(self, payload: str) -> bool:
        """Send `{"id": …, "type": "next", "payload": <payload JSON>}` now; False when it
        cannot be sent at once (nothing was sent)."""
        ...


#: The outlet of the operation whose task this is; set by the transport before it
#: subscribes, read when graphql-core hands the executor the source stream.
OPERATION_OUTLET: contextvars.ContextVar[Outlet | None] = contextvars.ContextVar(
    "signalsmith_operation_outlet", default=None
)


@runtime_checkable
class DirectSource(Protocol):
    """A source stream that can hand root values to `deliver` instead of yielding them."""

    def deliver_directly(self, deliver: Callable[[Any], bool]) -> None: ...


#: What an extension may declare when its per-result hooks leave a result without errors
#: (and its extensions) as they are.
PASSES_PLAIN_RESULTS = "passes_plain_results"


def passes_plain_results(extensions: Iterable[SchemaExtension]) -> bool:
    """Whether strawberry's per-result hooks (`on_stream_result`, `get_results`) of these
    extensions leave a subscription result without errors unchanged, so that it may be
    sent without running them."""
    for extension in extensions:
        kind = type(extension)
        hooked = (
            kind.on_stream_result is not SchemaExtension.on_stream_result
            or kind.get_results is not SchemaExtension.get_results
        )
        if hooked and not getattr(kind, PASSES_PLAIN_RESULTS, False):
            return False
    return True


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
            self._shared_base = SHARED.canonical_base(_base_key(self))
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

    def cancellable_iterable(self, iterable: AsyncIterable[T]) -> AsyncIterable[T]:
        """graphql-core passes the subscription's source stream here once, before its
        first event: give a `DirectSource` the way to deliver events itself."""
        outlet = OPERATION_OUTLET.get()
        if outlet is not None and isinstance(iterable, DirectSource) and self._passes_through():
            iterable.deliver_directly(functools.partial(self._deliver, outlet))
        return super().cancellable_iterable(iterable)

    def _passes_through(self) -> bool:
        schema = getattr(self.schema, "_strawberry_schema", None)
        return bool(getattr(schema, "passes_plain_results", False))

    def _deliver(self, outlet: Outlet, root: Any) -> bool:
        """Send the `next` message for `root` now, when its result is shared and plain."""
        payload = self.shared_payload(root)
        if payload is None or not outlet.write_next(payload):
            return False
        SHARED.delivered += 1
        return True

    def shared_payload(self, root: Any) -> str | None:
        """The encoded `payload` of this subscription's result for the event `root`,
        executed now unless another subscriber's already was; None when the result is not
        shareable, has errors, or cannot be produced synchronously."""
        base = self._shared_base
        last_base, last_root, last_payload = SHARED.last_delivered
        if root is last_root and base is last_base:
            SHARED.hits += 1  # the same event for the next subscriber of the document
            return last_payload
        shared_key = getattr(root, "shared_result_key", None)
        if shared_key is None or base is None:
            return None
        if base is _UNSET:
            base = self._shared_base = SHARED.canonical_base(_base_key(self))
            if base is None:
                return None
        key = (base, type(root).__name__, shared_key())
        result = SHARED.get(key)
        if result is None:
            executor = cast("SharedEventExecutor", super().build_per_event_executor(root))
            executor._result_key = key
            outcome = executor.execute_operation(False)
            if inspect.isawaitable(outcome):
                # Resolvers that await: this subscription's events take the ordinary path.
                if inspect.iscoroutine(outcome):
                    outcome.close()
                elif isinstance(outcome, asyncio.Future):
                    outcome.cancel()
                self._shared_base = None
                return None
            result = outcome
        payload = None if result.errors else SHARED.encoded_payload(result.data)
        SHARED.last_delivered = (base, root, payload)
        return payload


class _Executed:
    """Stands in for a per-event executor whose result is already known
    (`execute_subscription_event` only calls `execute_operation`)."""

    __slots__ = ("result",)

    def __init__(self, result: GraphQLExecutionResult) -> None:
        self.result = result

    def execute_operation(self, serially: bool | None = None) -> GraphQLExecutionResult:
        return self.result
