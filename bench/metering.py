"""What an execution uses, counted exactly: DynamoDB requests and their capacity units, Lambda calls, states.

DynamoDB on-demand bills request units by item size (DynamoDB developer guide, "Capacity unit
consumption"): a write costs 1 WRU per started KB of the larger of the item before and after it
(a delete: the deleted item), at least 1; a write whose condition fails changes nothing and is
billed on the existing item; a strongly consistent read costs 1 RRU per started 4 KB, at least 1,
an eventually consistent one half that. BatchGetItem and BatchWriteItem are billed item by item,
as that many GetItem, PutItem and DeleteItem requests; a Query page on the total size of the
items it read, rounded up once.

The meter is the one place where the bench hooks moto: it wraps the handler every DynamoDB request
reaches, from Lambda code and from the state machine's optimized integration alike.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.responses import DynamoHandler

from emulator import dynamodb_size
from emulator.adapters import Handler

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


# ---------------------------------------------------------------------------- item size
# Item sizes by DynamoDB's rules: one implementation, the emulator's (its 400 KB limit counts the same way).
item_size_bytes = dynamodb_size.item_size_bytes


def write_units(*sizes: int) -> int:
    """WRU of one write: 1 per started KB of the largest of ``sizes``, at least 1."""
    return max(1, math.ceil(max(sizes, default=0) / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """RRU of one item read: 1 per started 4 KB strongly consistent, half that eventually consistent; at least one."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


# ---------------------------------------------------------------------------- DynamoDB usage
@dataclass
class DynamoDBUsage:
    """DynamoDB requests by operation, and the request units they consume."""

    requests: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # failed a ConditionExpression (still billed)
    unpriced: Counter[str] = field(default_factory=Counter)  # requests whose units this meter does not compute
    wru: float = 0.0
    rru: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def units(self) -> float:
        return self.wru + self.rru

    def copy(self) -> DynamoDBUsage:
        return DynamoDBUsage(Counter(self.requests), Counter(self.refused), Counter(self.unpriced), self.wru, self.rru)

    def minus(self, earlier: DynamoDBUsage) -> DynamoDBUsage:
        """What was used since ``earlier`` (or more than ``earlier``; counts may go negative)."""
        return DynamoDBUsage(
            _subtract(self.requests, earlier.requests),
            _subtract(self.refused, earlier.refused),
            _subtract(self.unpriced, earlier.unpriced),
            self.wru - earlier.wru,
            self.rru - earlier.rru,
        )

    def describe(self) -> str:
        if not self.requests:
            return "0"
        parts = []
        for operation, count in sorted(self.requests.items()):
            refused = self.refused.get(operation, 0)
            parts.append(f"{operation} {count}" + (f" ({refused} refused)" if refused else ""))
        return f"{self.total}: " + ", ".join(parts)


def _subtract(later: Counter[str], earlier: Counter[str]) -> Counter[str]:
    names = set(later) | set(earlier)
    return Counter({name: later[name] - earlier[name] for name in names if later[name] - earlier[name]})


# DynamoHandler method -> API operation. One handler call is one request, as DynamoDB bills it (the
# backend is one level too low: moto's PutItem with ReturnValues reads through it a second time).
_OPERATIONS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "query": "Query",
    "scan": "Scan",
    "transact_get_items": "TransactGetItems",
    "transact_write_items": "TransactWriteItems",
    "execute_statement": "ExecuteStatement",
    "execute_transaction": "ExecuteTransaction",
    "batch_execute_statement": "BatchExecuteStatement",
}
_SINGLE_WRITES = ("PutItem", "UpdateItem", "DeleteItem")

# (table name, key in wire format) of one item a request addresses.
ItemRef = tuple[str, Mapping[str, Mapping[str, Any]]]


class DynamoDBMeter:
    """Counts the DynamoDB requests that reach moto, and the request units DynamoDB bills for them.

    Requests made inside ``not_counted()`` (the bench's own reads) are left out. The item returned
    with a refused write (``ReturnValuesOnConditionCheckFailure``) costs no extra read, as on AWS.
    """

    def __init__(self) -> None:
        self._usage = DynamoDBUsage()
        # Serializes requests so an item's size before and after a request belongs to that request.
        self._lock = threading.RLock()
        self._local = threading.local()

    def snapshot(self) -> DynamoDBUsage:
        with self._lock:
            return self._usage.copy()

    @contextlib.contextmanager
    def not_counted(self) -> Iterator[None]:
        """Leave out the requests this thread makes inside the block."""
        self._local.paused = True
        try:
            yield
        finally:
            self._local.paused = False

    @contextlib.contextmanager
    def metering(self) -> Iterator[DynamoDBMeter]:
        with contextlib.ExitStack() as patches:
            for method, operation in _OPERATIONS.items():
                original = getattr(DynamoHandler, method)
                patches.enter_context(mock.patch.object(DynamoHandler, method, self._metered(operation, original)))
            yield self

    def _metered(self, operation: str, original: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
        meter = self

        def request(handler: DynamoHandler) -> Any:
            if getattr(meter._local, "paused", False):
                return original(handler)
            with meter._lock:
                items = _items_addressed(operation, handler.body)
                before = [_stored_size(handler, item) for item in items]
                try:
                    response = original(handler)
                except ConditionalCheckFailed:
                    meter._record(operation, handler.body, before, before, None, refused=True)
                    raise
                after = [_stored_size(handler, item) for item in items]
                meter._record(operation, handler.body, before, after, response, refused=False)
                return response

        return request

    def _record(
        self, operation: str, body: Mapping[str, Any], before: list[int], after: list[int], response: Any, refused: bool
    ) -> None:
        usage = self._usage
        usage.requests[operation] += 1
        if refused:
            usage.refused[operation] += 1
        if operation in _SINGLE_WRITES:
            # A refused write changed nothing: after == before, so it is billed on the existing item.
            usage.wru += write_units(before[0], after[0])
        elif operation == "GetItem":
            usage.rru += read_units(before[0], bool(body.get("ConsistentRead", False)))
        elif operation == "BatchWriteItem":
            usage.wru += sum(write_units(old, new) for old, new in zip(before, after, strict=True))
        elif operation == "BatchGetItem":
            consistent = [bool(request.get("ConsistentRead", False)) for request in _batch_get_requests(body)]
            usage.rru += sum(read_units(size, flag) for size, flag in zip(before, consistent, strict=True))
        elif operation == "Query" and not body.get("FilterExpression"):
            usage.rru += _query_page_units(body, response)
        else:
            usage.unpriced[operation] += 1


def _items_addressed(operation: str, body: Mapping[str, Any]) -> list[ItemRef]:
    """The items a request reads or writes by key, in a fixed order (Query and others: none)."""
    if operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
        return [(body["TableName"], body.get("Key") or body["Item"])]
    if operation == "BatchWriteItem":
        refs: list[ItemRef] = []
        for table, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    refs.append((table, request["PutRequest"]["Item"]))
                elif "DeleteRequest" in request:
                    refs.append((table, request["DeleteRequest"]["Key"]))
        return refs
    if operation == "BatchGetItem":
        return [
            (table, key) for table, request in body.get("RequestItems", {}).items() for key in request.get("Keys", [])
        ]
    return []


def _batch_get_requests(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each key's table request in a BatchGetItem, in the order of ``_items_addressed``."""
    return [request for request in body.get("RequestItems", {}).values() for _ in request.get("Keys", [])]


def _stored_size(handler: DynamoHandler, ref: ItemRef) -> int:
    """Size of the item ``ref`` points at, as stored now (0 when absent)."""
    table_name, source = ref
    try:
        table = handler.dynamodb_backend.get_table(table_name)
        hash_key = DynamoType(dict(source[table.hash_key_attr]))
        range_key = DynamoType(dict(source[table.range_key_attr])) if table.range_key_attr else None
        item = table.get_item(hash_key, range_key)
    except Exception:
        return 0  # no such table or key: the request fails on its own, unbilled
    return 0 if item is None else item_size_bytes(item.to_json()["Attributes"])


def _query_page_units(body: Mapping[str, Any], response: Any) -> float:
    """A Query page: the total size of the items it returned, rounded up to 4 KB once (at least one unit)."""
    result = getattr(response, "result", None)  # moto's ActionResult, items in wire format
    items = result.get("Items", []) if isinstance(result, Mapping) else []
    return read_units(sum(item_size_bytes(item) for item in items), bool(body.get("ConsistentRead", False)))


# ---------------------------------------------------------------------------- Lambda
class LambdaTimer:
    """Times each handler call (only the handler: it is the innermost interceptor)."""

    def __init__(self) -> None:
        self.durations_ms: dict[str, list[float]] = {}

    def interceptor(self, logical_id: str) -> Callable[[Handler, Any, Any], Any]:
        durations = self.durations_ms.setdefault(logical_id, [])

        def timed(handler: Handler, event: Any, context: Any) -> Any:
            start = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                durations.append((time.perf_counter() - start) * 1000)

        return timed

    def billed_ms(self, logical_id: str) -> int:
        """Billed duration per call: the median measured call, rounded up to 1 ms as Lambda bills (at least 1)."""
        return _billed(self.durations_ms.get(logical_id) or [1.0])

    def billed_ms_of_last(self, logical_id: str, calls: int) -> int:
        """The same, over the function's last ``calls`` calls only (one path's calls)."""
        return _billed((self.durations_ms.get(logical_id) or [1.0])[-calls:])


def _billed(durations: Sequence[float]) -> int:
    return max(1, math.ceil(statistics.median(durations)))


class TaskTokens:
    """The lengths of the task tokens the functions received (``taskToken`` in their event)."""

    def __init__(self) -> None:
        self.lengths: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, handler: Handler, event: Any, context: Any) -> Any:
        token = event.get("taskToken") if isinstance(event, dict) else None
        if isinstance(token, str):
            with self._lock:
                self.lengths[len(token)] += 1
        return handler(event, context)


# ---------------------------------------------------------------------------- states
def count_step_states(history: Sequence[Mapping[str, Any]], step_functions: set[str]) -> int:
    """States entered that invoked a business step's function (found from the history, not from state names)."""
    events = {event["id"]: event for event in history}
    entered: set[int] = set()
    for event in history:
        details = event.get("taskScheduledEventDetails")
        if not details or details.get("resourceType") != "lambda":
            continue
        function = json.loads(details.get("parameters") or "{}").get("FunctionName", "")
        if _function_name(function) in step_functions:
            state = _state_entered_before(events, event)
            if state is not None:
                entered.add(state)
    return len(entered)


def _function_name(name_or_arn: str) -> str:
    # arn:aws:lambda:region:account:function:NAME[:qualifier] -> NAME
    parts = name_or_arn.split(":")
    return parts[6] if len(parts) >= 7 and parts[5] == "function" else name_or_arn


def _state_entered_before(events: Mapping[int, Mapping[str, Any]], event: Mapping[str, Any]) -> int | None:
    seen: set[int] = set()
    current: Mapping[str, Any] | None = event
    while current is not None and current["id"] not in seen:
        if current["type"].endswith("StateEntered"):
            return int(current["id"])
        seen.add(current["id"])
        current = events.get(current.get("previousEventId", 0))
    return None


@dataclass
class Usage:
    """What one execution path used."""

    states_entered: int
    step_states: int
    lambda_calls: dict[str, int]
    dynamodb: DynamoDBUsage

    @property
    def envelope_states(self) -> int:
        return self.states_entered - self.step_states


@dataclass(frozen=True)
class Counters:
    """The stack-wide counters at one moment."""

    lambda_calls: dict[str, int]
    dynamodb: DynamoDBUsage

    def since(self, earlier: Counters) -> Counters:
        return Counters(
            {name: calls - earlier.lambda_calls.get(name, 0) for name, calls in self.lambda_calls.items()},
            self.dynamodb.minus(earlier.dynamodb),
        )
