"""What one execution of the idempotent workflow costs, and how fast its key function is.

    make bench                          # run every path on the offline emulator, print the table
    python scripts/bench.py --json      # the same figures as JSON
    python scripts/bench.py --quick     # fewer repetitions, shorter waits (a few seconds)

On AWS a Standard workflow is billed per state transition, so transitions dominate what the
envelope costs; waiters also add latency. This script deploys ``template.yaml`` into the offline
emulator and drives each path only through the public ``OfflineStack`` API (no state names), so
it keeps working while the ASL changes:

* a fresh run that succeeds, and a hit on its stored result;
* a fresh run whose steps fail (``forceFailure: true``) and the rerun after it (same key);
* a waiter: the owner is held inside a business step while a second execution with the same
  input waits W declared seconds; then the owner is released.

For each path it counts the states entered (from the execution history), the Lambda invocations
of every function of the template, and the DynamoDB requests by operation with the request units
DynamoDB on-demand bills for them; it prices them at list prices. It also measures the key
function's cold import time and the time to compute the key of a 200 KiB input.

Each target of the issue is printed as met, or with its gap. Exit status 0 whether or not the
targets are met; 1 only when the bench itself fails (a path did not behave as the contract says).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as a file (python scripts/bench.py), not only with -m
    sys.path.insert(0, str(PROJECT_ROOT))

import boto3  # noqa: E402
from moto.dynamodb.exceptions import ConditionalCheckFailed  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402

from emulator import ExecutionResult, OfflineStack  # noqa: E402
from emulator.adapters import Handler, load_module  # noqa: E402
from emulator.stack import QUIET_FUNCTIONS, envelope_resource  # noqa: E402
from emulator.template import Template  # noqa: E402

EVENTS = PROJECT_ROOT / "events"
FRESH_EVENT = EVENTS / "execution_fresh.json"
# Its idempotencyKeyJmespath leaves forceFailure out of the key: the rerun after a failure has the same key.
RERUN_EVENT = EVENTS / "execution_jmespath_key.json"
FORCE_FAILURE_FIELD = "forceFailure"  # the example failing step's switch (functions/random_failure)
QUIET = QUIET_FUNCTIONS
FUNCTION = "AWS::Serverless::Function"

# The function whose import and key computation are timed, and the module that computes the key.
KEY_FUNCTION = "AcquireLockFunction"
KEY_MODULE = "idempotency.key"
# A function that loads this package (from a layer) is part of the envelope; the others are business steps.
ENVELOPE_PACKAGE = "idempotency"
# The business step a waiter's owner is held in.
HOLD_FUNCTION = "ExampleStepFunction"

# ---------------------------------------------------------------------------- prices and targets
PRICES_REGION = "us-east-1"
PRICES_TAKEN = "2026-11-23"
PRICES_SOURCE = "AWS list prices for Step Functions, Lambda and DynamoDB on-demand, as quoted in the benchmark issue"


@dataclass(frozen=True)
class Prices:
    """List prices in USD. Free tiers are ignored."""

    standard_per_1k_transitions: float = 0.025
    lambda_per_million_requests: float = 0.20
    lambda_per_gb_second: Mapping[str, float] = field(default_factory=lambda: {"arm64": 0.0000133334, "x86_64": 0.0000166667})
    dynamodb_per_million_wru: float = 0.625
    dynamodb_per_million_rru: float = 0.125


HIT_MAX_STATES = 4
HIT_MAX_LAMBDA_CALLS = 1
ENVELOPE_MAX_STATES = 4  # states a fresh run enters beyond its business steps
WAITER_MAX_LATENCY_S = 1.0  # declared seconds between the owner finishing and the waiter returning
WAITER_GROWTH_LIMIT = 3.0  # states per 10 s of waiting: the target is to grow by less
COLD_IMPORT_MAX_MS = 150.0
HASH_MAX_MS = 20.0
HASH_INPUT_BYTES = 200 * 1024
MIX_HIT_SHARE = 0.9

# The seed design's figures, as the issue gives them (its waiter looks again every 10 s).
SEED_POLL_SECONDS = 10
SEED_REFERENCE = {
    "fresh": "10 states (5 steps), 2 Lambda, 2 DynamoDB",
    "hit": "6 states, 1 Lambda, 2 DynamoDB",
}


def seed_waiter_reference(waited_s: float) -> str:
    polls = math.ceil(waited_s / SEED_POLL_SECONDS)
    return f"3k+6 = {3 * polls + 6} states, 1 Lambda, k+2 = {polls + 2} DynamoDB (k = {polls})"


@dataclass(frozen=True)
class BenchOptions:
    """How much to measure: ``quick`` trades precision for seconds."""

    quick: bool = False
    # Wait states last time_scale x their declared seconds; history timestamps have millisecond
    # precision, so a millisecond spent in a Wait is 0.001 / time_scale declared seconds.
    time_scale: float = 0.01
    # Declared seconds the two priced waiters wait before their owner is released (see _let_wait).
    waiter_waits: tuple[float, float] = (30.0, 120.0)

    @property
    def extra_latency_samples(self) -> int:
        """More waiters, released at other points of a poll interval, for the latency figure."""
        return 1 if self.quick else 3

    @property
    def import_runs(self) -> int:
        return 3 if self.quick else 7

    @property
    def hash_runs(self) -> int:
        return 20 if self.quick else 200


class BenchError(RuntimeError):
    """A path did not behave as the contract says, so its figures would mean nothing."""


# ---------------------------------------------------------------------------- DynamoDB request units
def attribute_size(value: Mapping[str, Any]) -> int:
    """Size in bytes of one DynamoDB attribute value (wire format), by DynamoDB's published rules."""
    (kind, content), = value.items()
    if kind == "S":
        return len(content.encode("utf-8"))
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(content) if isinstance(content, bytes) else math.ceil(len(content) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        element = kind[0]
        return sum(attribute_size({element: item}) for item in content)
    if kind == "L":
        return 3 + sum(1 + attribute_size(item) for item in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + attribute_size(item) for name, item in content.items())
    raise ValueError(f"Unknown DynamoDB attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Size in bytes of an item: attribute names plus values (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def write_units(*sizes: int) -> int:
    """On-demand write request units: 1 per started KB of the larger of the item's sizes (at least 1)."""
    return max(1, math.ceil(max(sizes, default=0) / 1024))


def read_units(size: int, consistent: bool) -> float:
    """On-demand read request units: 1 per started 4 KB strongly consistent, half that eventually consistent."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


@dataclass
class DynamoDBUsage:
    """DynamoDB requests by operation, and the request units they consume."""

    requests: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # failed a ConditionExpression (still billed)
    unpriced: Counter[str] = field(default_factory=Counter)  # operations whose units this meter does not compute
    wru: float = 0.0
    rru: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

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
_SINGLE_ITEM_OPERATIONS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "get_item": "GetItem",
}
_OTHER_ITEM_OPERATIONS = {
    "query": "Query",
    "scan": "Scan",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "transact_get_items": "TransactGetItems",
    "transact_write_items": "TransactWriteItems",
    "execute_statement": "ExecuteStatement",
    "execute_transaction": "ExecuteTransaction",
    "batch_execute_statement": "BatchExecuteStatement",
}


class DynamoDBMeter:
    """Counts the DynamoDB item requests that reach moto, and the request units they consume.

    It sees every request: from Lambda code (boto3) and from the state machine's optimized
    integration alike. Request units follow DynamoDB on-demand: a write consumes 1 WRU per started
    KB of the larger of the item before and after it, also when its condition fails; a read 1 RRU
    per started 4 KB strongly consistent (half eventually consistent), at least one unit. The item
    returned with a refused write (``ReturnValuesOnConditionCheckFailure``) costs no extra read.
    Requests made inside ``not_counted()`` (the bench's own reads) are left out.
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
            for method, operation in {**_SINGLE_ITEM_OPERATIONS, **_OTHER_ITEM_OPERATIONS}.items():
                original = getattr(DynamoHandler, method)
                patches.enter_context(mock.patch.object(DynamoHandler, method, self._metered(operation, original)))
            yield self

    def _metered(self, operation: str, original: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
        meter = self

        def request(handler: DynamoHandler) -> Any:
            if getattr(meter._local, "paused", False):
                return original(handler)
            with meter._lock:
                before = _stored_item_size(handler)
                try:
                    response = original(handler)
                except ConditionalCheckFailed:
                    meter._record(operation, handler, before, None, refused=True)
                    raise
                meter._record(operation, handler, before, _stored_item_size(handler), refused=False)
                return response

        return request

    def _record(self, operation: str, handler: DynamoHandler, before: int | None, after: int | None, refused: bool) -> None:
        usage = self._usage
        usage.requests[operation] += 1
        if refused:
            usage.refused[operation] += 1
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            requested = item_size(handler.body.get("Item")) if operation == "PutItem" else 0
            usage.wru += write_units(before or 0, after or 0, requested)
        elif operation == "GetItem":
            usage.rru += read_units(before or 0, bool(handler.body.get("ConsistentRead", False)))
        else:
            usage.unpriced[operation] += 1


def _stored_item_size(handler: DynamoHandler) -> int | None:
    """Size of the item a single-item request addresses, as stored now (None for other requests)."""
    body = handler.body
    if "TableName" not in body or not ("Key" in body or "Item" in body):
        return None
    try:
        table = handler.dynamodb_backend.get_table(body["TableName"])
        source = body.get("Key") or body["Item"]
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(hash_key, range_key)
    except Exception:
        return None
    return 0 if item is None else item_size(item.to_json()["Attributes"])


# ---------------------------------------------------------------------------- Lambda
@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template, as deployed: what it is billed for."""

    logical_id: str
    function_name: str
    memory_mb: int
    architecture: str
    envelope: bool


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
        durations = self.durations_ms.get(logical_id) or [1.0]
        return max(1, math.ceil(statistics.median(durations)))


# ---------------------------------------------------------------------------- one path's usage
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


@dataclass
class Cost:
    """USD per million executions."""

    transitions: float
    lambda_: float
    dynamodb: float

    @property
    def total(self) -> float:
        return self.transitions + self.lambda_ + self.dynamodb

    def as_dict(self) -> dict[str, float]:
        return {"transitions": self.transitions, "lambda": self.lambda_, "dynamodb": self.dynamodb, "total": self.total}


@dataclass
class Target:
    """One target of the issue, measured."""

    what: str
    measured: float
    limit: float
    unit: str
    strict: bool = False  # measured must be below the limit, not just at most

    @property
    def met(self) -> bool:
        return self.measured < self.limit if self.strict else self.measured <= self.limit

    def verdict(self) -> str:
        if self.met:
            return "met"
        measured = f"{_number(self.measured)}{self._unit}"
        if self.strict:
            return f"gap: {measured}, not below {_number(self.limit)}"
        return f"gap: {measured}, {_number(self.measured - self.limit)}{self._unit} over"

    def describe(self) -> str:
        return f"{self.what} {'<' if self.strict else '≤'} {_number(self.limit)}{self._unit}".strip()

    @property
    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.describe(), "measured": self.measured, "limit": self.limit, "met": self.met}


@dataclass
class PathResult:
    """A path of the workflow: its usage, what it costs, and its targets."""

    key: str
    label: str
    usage: Usage
    executions: list[ExecutionResult]
    reference: str = "—"
    targets: list[Target] = field(default_factory=list)
    cost: Cost | None = None
    notes: dict[str, Any] = field(default_factory=dict)


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


# ---------------------------------------------------------------------------- the bench on a stack
class Bench:
    """The deployed stack with its counters: runs executions and says what each used."""

    def __init__(
        self,
        stack: OfflineStack,
        meter: DynamoDBMeter,
        timer: LambdaTimer,
        functions: dict[str, FunctionSpec],
        clock: DeclaredClock,
    ) -> None:
        self.stack = stack
        self.clock = clock
        self.meter = meter
        self.timer = timer
        self.functions = functions
        self.step_function_names = {spec.function_name for spec in functions.values() if not spec.envelope}

    @classmethod
    @contextlib.contextmanager
    def deployed(cls, options: BenchOptions) -> Iterator[Bench]:
        """Deploy the stack, with every function timed and DynamoDB metered."""
        with contextlib.ExitStack() as exit_stack:
            stack = exit_stack.enter_context(OfflineStack(environment=QUIET, time_scale=options.time_scale))
            functions = describe_functions(stack)
            timer = LambdaTimer()
            for logical_id in functions:
                # Entered first, so it is the innermost interceptor: a gate added later is not timed.
                exit_stack.enter_context(stack.lambdas.intercept(logical_id, timer.interceptor(logical_id)))
            meter = exit_stack.enter_context(DynamoDBMeter().metering())
            definition = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
            yield cls(stack, meter, timer, functions, DeclaredClock(json.loads(definition), stack.time_scale))

    def counters(self) -> Counters:
        return Counters(
            {logical_id: self.stack.lambdas.invocations(logical_id) for logical_id in self.functions},
            self.meter.snapshot(),
        )

    def usage_of(self, result: ExecutionResult, counted: Counters) -> Usage:
        return Usage(
            states_entered=len(result.states_entered),
            step_states=count_step_states(result.history, self.step_function_names),
            lambda_calls=counted.lambda_calls,
            dynamodb=counted.dynamodb,
        )

    def run(self, execution_input: Any) -> tuple[ExecutionResult, Usage]:
        """Run one execution alone and return it with what it used."""
        before = self.counters()
        result = self.stack.run(execution_input)
        return result, self.usage_of(result, self.counters().since(before))

    def cost(self, usage: Usage, prices: Prices) -> Cost:
        """What a million executions of this usage cost."""
        lambda_per_call = 0.0
        for logical_id, calls in usage.lambda_calls.items():
            spec = self.functions[logical_id]
            gb_seconds = spec.memory_mb / 1024 * self.timer.billed_ms(logical_id) / 1000
            lambda_per_call += calls * (
                prices.lambda_per_million_requests / 1e6 + gb_seconds * prices.lambda_per_gb_second[spec.architecture]
            )
        return Cost(
            transitions=usage.states_entered * prices.standard_per_1k_transitions * 1000,
            lambda_=lambda_per_call * 1e6,
            dynamodb=usage.dynamodb.wru * prices.dynamodb_per_million_wru + usage.dynamodb.rru * prices.dynamodb_per_million_rru,
        )


def _lambda_client(stack: OfflineStack) -> Any:
    return boto3.client("lambda", region_name=stack.sfn.meta.region_name)


def describe_functions(stack: OfflineStack) -> dict[str, FunctionSpec]:
    """Every function of the envelope and of its steps, with its deployed memory and architecture.

    The functions of other state machines of the template (the examples') are left out.
    """
    client = _lambda_client(stack)
    steps = _functions_the_envelope_calls(stack.template)
    functions = {}
    for logical_id in stack.template.resources_of_type(FUNCTION):
        roots = stack.template.import_roots(logical_id)[1:]  # the layers' content
        envelope = any((root / ENVELOPE_PACKAGE / "__init__.py").exists() for root in roots)
        if not envelope and logical_id not in steps:
            continue
        name = stack.physical_id(logical_id)
        configuration = client.get_function_configuration(FunctionName=name)
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            function_name=name,
            memory_mb=int(configuration["MemorySize"]),
            architecture=(configuration.get("Architectures") or ["x86_64"])[0],
            envelope=envelope,
        )
    return functions


def _functions_the_envelope_calls(template: Template) -> set[str]:
    """The functions whose ARN the envelope's definition is given (DefinitionSubstitutions)."""
    machine = template.resources[envelope_resource(template, "AWS::Serverless::StateMachine")]
    substitutions = machine["Properties"].get("DefinitionSubstitutions", {}).values()
    return {value["Fn::GetAtt"][0] for value in substitutions if isinstance(value, dict) and "Fn::GetAtt" in value}


def _load_event(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        event: dict[str, Any] = json.load(stream)
    return event


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def measure_runs(bench: Bench) -> list[PathResult]:
    """The paths of single executions: fresh, hit, failure and the rerun after it."""
    fresh_input = _load_event(FRESH_EVENT)
    fresh, fresh_usage = bench.run(fresh_input)
    _expect(fresh.status == "SUCCEEDED", f"the fresh run {fresh.status}: {fresh.error} {fresh.cause}")
    hit, hit_usage = bench.run(fresh_input)
    _expect(hit.status == "SUCCEEDED" and hit.output == fresh.output, f"the hit {hit.status} or changed the output")

    rerun_input = _load_event(RERUN_EVENT)
    failed, failed_usage = bench.run({**rerun_input, FORCE_FAILURE_FIELD: True})
    _expect(failed.status == "FAILED", f"the forced failure {failed.status}, not FAILED")
    rerun, rerun_usage = bench.run({**rerun_input, FORCE_FAILURE_FIELD: False})
    _expect(rerun.status == "SUCCEEDED", f"the rerun after the failure {rerun.status}: {rerun.error} {rerun.cause}")
    _expect(rerun_usage.step_states > 0, "the rerun after the failure did not run the steps")

    return [
        PathResult("fresh", "fresh run, success", fresh_usage, [fresh], SEED_REFERENCE["fresh"], [_envelope_target(fresh_usage)]),
        PathResult(
            "hit",
            "hit on the stored result",
            hit_usage,
            [hit],
            SEED_REFERENCE["hit"],
            [
                Target("states entered", hit_usage.states_entered, HIT_MAX_STATES, ""),
                Target("Lambda calls", sum(hit_usage.lambda_calls.values()), HIT_MAX_LAMBDA_CALLS, ""),
            ],
        ),
        PathResult("failed", "fresh run, steps fail", failed_usage, [failed]),
        PathResult("rerun", "rerun after the failure, success", rerun_usage, [rerun], targets=[_envelope_target(rerun_usage)]),
    ]


def _envelope_target(usage: Usage) -> Target:
    return Target("states beyond the steps", usage.envelope_states, ENVELOPE_MAX_STATES, "")


# ---------------------------------------------------------------------------- waiters
class Gate:
    """Holds every call of a function until opened; tells when the first call arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._open = threading.Event()

    def __call__(self, handler: Handler, event: Any, context: Any) -> Any:
        self.arrived.set()
        if not self._open.wait(timeout=120):
            raise TimeoutError("the bench never opened the gate")
        return handler(event, context)

    def open(self) -> None:
        self._open.set()


@dataclass
class WaiterRun:
    """One waiter: what it and its owner did, and when each finished."""

    owner: ExecutionResult
    waiter: ExecutionResult
    counted: Counters
    released_after_s: float  # declared seconds the waiter had waited when the owner was released
    waited_s: float  # declared seconds the waiter waited in all (see DeclaredClock.waited)
    latency_wall_s: float
    latency_declared_s: float


def run_waiter(bench: Bench, execution_input: Any, declared_wait_s: float, release_delay_s: float = 0.0) -> WaiterRun:
    """Hold an owner in a business step, let a second execution with its input wait, then release it.

    ``release_delay_s`` (declared) moves the release later within the waiter's Wait, for latency samples.
    """
    stack = bench.stack
    gate = Gate()
    before = bench.counters()
    with stack.lambdas.intercept(HOLD_FUNCTION, gate):
        try:
            owner_arn = stack.start_execution(execution_input)
            _expect(gate.arrived.wait(30), "the owner never reached its business steps")
            waiter_arn = stack.start_execution(execution_input)
            released_after_s = _let_wait(stack, bench.clock, waiter_arn, declared_wait_s)
            time.sleep(release_delay_s * stack.time_scale)
        finally:
            gate.open()  # also on an error, so that no execution is left held
        owner = stack.wait_for(owner_arn, timeout=30)
        waiter = stack.wait_for(waiter_arn, timeout=30)
    counted = bench.counters().since(before)
    _expect(owner.status == "SUCCEEDED", f"the owner {owner.status}: {owner.error} {owner.cause}")
    _expect(
        waiter.status == "SUCCEEDED" and waiter.output == owner.output,
        f"the waiter {waiter.status} ({waiter.error}) or did not return the owner's output",
    )
    owner_end, waiter_end = _end(owner.history), _end(waiter.history)
    return WaiterRun(
        owner,
        waiter,
        counted,
        released_after_s=released_after_s,
        # A waiter parked on a task token (no Wait states) waited until its owner was released: the
        # owner's own finishing is slowed down on the emulator and would be counted a hundredfold.
        waited_s=bench.clock.waited(waiter.history, until=owner_end) if _wait_intervals(waiter.history) else released_after_s,
        latency_wall_s=(waiter_end - owner_end).total_seconds(),
        latency_declared_s=bench.clock.seconds(waiter.history, owner_end, waiter_end),
    )


def _let_wait(stack: OfflineStack, clock: DeclaredClock, waiter_arn: str, declared_wait_s: float) -> float:
    """Return once the waiter has waited ``declared_wait_s`` declared seconds; return how long it waited.

    The waiter is released only while it is parked, never in the middle of a look:

    * in a Wait state: it has waited the declared seconds of the Wait states before it, and is
      released just after it enters one with at least ``declared_wait_s`` before it, so the owner
      has a whole poll interval to finish before the next look (on the emulator the owner's
      finishing is not shortened). This depends only on the history, not on when this thread runs.
    * in a callback task (``TaskSubmitted``: waiting for its task token): nothing it does depends
      on time, so it has waited the emulator's wall time since it started / time_scale.
    """
    started = time.monotonic()
    deadline = started + 30 + declared_wait_s * stack.time_scale * 10
    while True:
        history = stack.sfn.get_execution_history(executionArn=waiter_arn)["events"]
        parked_in = history[-1]["type"] if history else None
        if parked_in == "WaitStateEntered":
            waited = clock.waits_entered(history)[-1].waited_before_s
            if waited >= declared_wait_s:
                return waited
        elif parked_in == "TaskSubmitted":
            # The same clock as DeclaredClock.waited: the emulator's timestamps since the waiter started.
            waited = (datetime.now(UTC) - _start(history)).total_seconds() / stack.time_scale
            if waited >= declared_wait_s:
                return waited
        _expect(time.monotonic() < deadline, f"the waiter never waited {declared_wait_s} declared seconds")
        time.sleep(2.5 * stack.time_scale)  # a quarter of a 10 s Wait: one is rarely missed


@dataclass(frozen=True)
class WaitEntered:
    """A Wait state an execution entered: the declared seconds it had waited in Wait states before."""

    waited_before_s: float
    still_waiting: bool


class DeclaredClock:
    """Turns an execution's time on the emulator into the seconds it would take on AWS.

    The emulator shortens only Wait states (and Retry intervals) by ``time_scale``. A Wait state
    with a fixed ``Seconds`` counts as those seconds, spread evenly over the time it was entered
    (so that the interpreter's own overhead inside it is not multiplied); any other Wait counts
    its measured time divided by ``time_scale``. Everything else counts as measured. History
    timestamps have millisecond precision.
    """

    def __init__(self, definition: Mapping[str, Any], time_scale: float) -> None:
        self.time_scale = time_scale
        self.wait_seconds: dict[str, float | None] = {}
        self._collect_waits(definition.get("States", {}))

    def _collect_waits(self, states: Mapping[str, Any]) -> None:
        for name, state in states.items():
            if state.get("Type") == "Wait":
                seconds = state.get("Seconds")
                self.wait_seconds[name] = float(seconds) if isinstance(seconds, (int, float)) else None
            for branch in state.get("Branches", []):
                self._collect_waits(branch.get("States", {}))
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                self._collect_waits(processor.get("States", {}))

    def seconds(self, history: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> float:
        """Declared seconds from ``start`` to ``end`` of the execution with this ``history``."""
        declared = (end - start).total_seconds()
        for name, entered, exited in _wait_intervals(history):
            stop = exited or end
            overlap = _overlap((entered, stop), (start, end))
            if overlap <= 0:
                continue
            fixed = self.wait_seconds.get(name)
            if fixed is None or exited is None:  # no fixed length, or still waiting: measured, scaled back
                in_wait = overlap / self.time_scale if fixed is None else min(overlap / self.time_scale, fixed)
            else:
                in_wait = fixed * overlap / (exited - entered).total_seconds()
            declared += in_wait - overlap
        return declared

    def waited(self, history: Sequence[Mapping[str, Any]], until: datetime) -> float:
        """Declared seconds a waiter waited: the declared length of every Wait state it entered.

        A waiter without Wait states (parked in a task until called back) waited from its start
        until ``until`` (its owner's end) by the emulator's clock, wall time / time_scale.
        """
        intervals = _wait_intervals(history)
        if not intervals:
            return (until - _start(history)).total_seconds() / self.time_scale
        return sum(self._length(name, entered, exited or until) for name, entered, exited in intervals)

    def waits_entered(self, history: Sequence[Mapping[str, Any]]) -> list[WaitEntered]:
        """Every Wait state entered, in order, with the declared seconds waited in the ones before it."""
        waits, waited = [], 0.0
        for name, entered, exited in _wait_intervals(history):
            waits.append(WaitEntered(waited, exited is None))
            if exited is not None:
                waited += self._length(name, entered, exited)
        return waits

    def _length(self, name: str, entered: datetime, exited: datetime) -> float:
        fixed = self.wait_seconds.get(name)
        return fixed if fixed is not None else (exited - entered).total_seconds() / self.time_scale


def _start(history: Sequence[Mapping[str, Any]]) -> datetime:
    start: datetime = min(event["timestamp"] for event in history)
    return start


def _end(history: Sequence[Mapping[str, Any]]) -> datetime:
    end: datetime = max(event["timestamp"] for event in history)
    return end


def _wait_intervals(history: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime, datetime | None]]:
    """Each Wait state entered: its name, when it was entered, and when it was exited (None: still waiting)."""
    entered = [event for event in history if event["type"] == "WaitStateEntered"]
    exited = [event["timestamp"] for event in history if event["type"] == "WaitStateExited"]
    return [
        (event["stateEnteredEventDetails"]["name"], event["timestamp"], exited[index] if index < len(exited) else None)
        for index, event in enumerate(entered)
    ]


def _overlap(first: tuple[datetime, datetime], second: tuple[datetime, datetime]) -> float:
    start, end = max(first[0], second[0]), min(first[1], second[1])
    return max(0.0, (end - start).total_seconds())


def waiter_path(bench: Bench, run: WaiterRun, fresh: PathResult, declared_wait_s: float) -> PathResult:
    """The marginal cost of one waiter: its own execution, plus what its owner did beyond a lone fresh run."""
    owner_extra_states = len(run.owner.states_entered) - fresh.usage.states_entered
    owner_extra_steps = count_step_states(run.owner.history, bench.step_function_names) - fresh.usage.step_states
    usage = Usage(
        states_entered=len(run.waiter.states_entered) + owner_extra_states,
        step_states=count_step_states(run.waiter.history, bench.step_function_names) + owner_extra_steps,
        lambda_calls={
            name: calls - fresh.usage.lambda_calls.get(name, 0) for name, calls in run.counted.lambda_calls.items()
        },
        dynamodb=run.counted.dynamodb.minus(fresh.usage.dynamodb),
    )
    return PathResult(
        key=f"waiter_{declared_wait_s:.0f}s",
        label=f"waiter, owner released after {run.released_after_s:.0f} s, waited {run.waited_s:.0f} s",
        usage=usage,
        executions=[run.owner, run.waiter],
        reference=seed_waiter_reference(run.waited_s),
        targets=[Target("returns after the owner finished in", round(run.latency_declared_s, 2), WAITER_MAX_LATENCY_S, "s")],
        notes={
            "released_after_s": run.released_after_s,
            "waited_s": run.waited_s,
            "waiter_states_entered": len(run.waiter.states_entered),
            "owner_extra_states": owner_extra_states,
            "latency_wall_s": run.latency_wall_s,
            "latency_declared_s": run.latency_declared_s,
        },
    )


@dataclass
class WaiterSummary:
    """How a waiter's cost grows with the wait, and how late it learns that its owner finished."""

    growth_per_10s: dict[str, float]
    growth_target: Target
    latencies_declared_s: list[float]
    latencies_wall_s: list[float]
    latency_target: Target
    time_scale: float


def measure_waiters(bench: Bench, fresh: PathResult, options: BenchOptions) -> tuple[list[PathResult], WaiterSummary]:
    base_input = _load_event(FRESH_EVENT)
    sample = iter(range(1, 1_000))

    def distinct_input() -> dict[str, Any]:  # each waiter pair needs a key of its own
        return {**base_input, "benchSample": next(sample)}

    paths = [waiter_path(bench, run_waiter(bench, distinct_input(), wait), fresh, wait) for wait in options.waiter_waits]
    latencies = [(path.notes["latency_declared_s"], path.notes["latency_wall_s"]) for path in paths]
    poll_s = float(bench.stack.parameters.get("PollIntervalSeconds", SEED_POLL_SECONDS))
    for index in range(1, options.extra_latency_samples + 1):
        # Released at other points of a poll interval: the latency of a polling waiter depends on it.
        run = run_waiter(bench, distinct_input(), options.waiter_waits[0], poll_s * index / (options.extra_latency_samples + 1))
        latencies.append((run.latency_declared_s, run.latency_wall_s))

    short, long = paths[0], paths[-1]
    _expect(long.notes["waited_s"] > short.notes["waited_s"], "the longer waiter did not wait longer")
    per_10s = 10 / (long.notes["waited_s"] - short.notes["waited_s"])
    growth = {
        "states": (long.usage.states_entered - short.usage.states_entered) * per_10s,
        "lambda_calls": (sum(long.usage.lambda_calls.values()) - sum(short.usage.lambda_calls.values())) * per_10s,
        "dynamodb_requests": (long.usage.dynamodb.total - short.usage.dynamodb.total) * per_10s,
    }
    worst = max(declared for declared, _ in latencies)
    summary = WaiterSummary(
        growth_per_10s=growth,
        growth_target=Target("growth per 10 s of waiting", round(growth["states"], 2), WAITER_GROWTH_LIMIT, "states", strict=True),
        latencies_declared_s=[declared for declared, _ in latencies],
        latencies_wall_s=[wall for _, wall in latencies],
        latency_target=Target("worst latency", round(worst, 2), WAITER_MAX_LATENCY_S, "s"),
        time_scale=bench.stack.time_scale,
    )
    long.targets.append(summary.growth_target)
    return paths, summary


# ---------------------------------------------------------------------------- the key function
_IMPORT_PROBE = """
import importlib, json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
sys.stderr.write("bench: import starts\\n")
start = time.perf_counter()
importlib.import_module(sys.argv[2])
print(time.perf_counter() - start)
"""
_IMPORT_MARK = "bench: import starts"


@dataclass
class ImportTiming:
    """Cold import of one module in fresh interpreters."""

    label: str
    module: str
    median_ms: float
    runs_ms: list[float]
    largest_imports_ms: dict[str, float]
    target: Target


def measure_cold_import(
    import_roots: Sequence[Path], module: str, environment: Mapping[str, str], runs: int, label: str
) -> ImportTiming:
    """Median time to import ``module`` in a fresh ``python -I`` (one unmeasured run first writes the .pyc files)."""
    command = [sys.executable, "-I", "-c", _IMPORT_PROBE, json.dumps([str(root) for root in import_roots]), module]
    env = {**_minimal_environment(), **environment}
    _run_probe(command, env)
    timings = [float(_run_probe(command, env).stdout) * 1000 for _ in range(runs)]
    profiled = _run_probe([command[0], "-X", "importtime", *command[1:]], env)
    breakdown = _largest_imports(profiled.stderr, float(profiled.stdout) * 1000)
    median = statistics.median(timings)
    return ImportTiming(label, module, median, timings, breakdown, Target("", round(median, 1), COLD_IMPORT_MAX_MS, "ms"))


def _run_probe(command: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, env=dict(env), capture_output=True, text=True, check=False, timeout=120)
    if completed.returncode != 0:
        raise BenchError(f"importing {command[-1]} failed:\n{completed.stderr[-2000:]}")
    return completed


def _minimal_environment() -> dict[str, str]:
    # No credentials are needed to import: clients are only created, never called.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    return {
        **{name: os.environ[name] for name in keep if name in os.environ},
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def _largest_imports(importtime_log: str, total_ms: float, count: int = 4) -> dict[str, float]:
    """Where the import time goes: the module's direct imports that took longest, and its own code.

    ``importlib.import_module`` itself is not in the ``-X importtime`` log, so the imports its
    module makes are the outermost entries after the probe's mark (cumulative times); what
    remains of the total is the module's own code (clients and loggers created at import).
    """
    lines = importtime_log.split(_IMPORT_MARK, 1)[-1].splitlines()
    entries = []
    for line in lines:
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line, or anything else on stderr
        name = parts[2]
        entries.append((len(name) - len(name.lstrip()), name.strip(), int(parts[1]) / 1000))
    if not entries:
        return {}
    outermost = min(depth for depth, _, _ in entries)
    direct = [(name, ms) for depth, name, ms in entries if depth == outermost]
    largest = dict(sorted(direct, key=lambda entry: entry[1], reverse=True)[:count])
    largest["(own code)"] = max(0.0, total_ms - sum(ms for _, ms in direct))
    return largest


@dataclass
class HashTiming:
    """Time to compute the key of a large input."""

    input_bytes: int
    median_ms: float
    runs: int
    target: Target


def large_input(canonical_json: Callable[[Any], bytes], size: int = HASH_INPUT_BYTES) -> dict[str, Any]:
    """A deterministic order-like input whose canonical JSON is at least ``size`` bytes."""
    items: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"orderId": "bench-200KiB", "customer": {"id": "c-42", "tier": "gold"}, "items": items}
    while len(canonical_json(payload)) < size:
        index = len(items)
        items.append(
            {
                "sku": f"SKU-{index:06d}",
                "quantity": index % 7 + 1,
                "unitPrice": round(index * 1.37 % 100, 2),
                "attributes": {"size": "XL" if index % 2 else "M", "colour": f"c{index % 13}", "gift": index % 5 == 0},
                "description": f"Item {index} of the benchmark order, with a description of ordinary length.",
            }
        )
    return payload


def measure_key_hash(import_roots: Sequence[Path], runs: int) -> HashTiming:
    """Median time of ``compute_idempotency_key`` on a 200 KiB input (key of the whole input)."""
    key_module = load_module(list(import_roots), KEY_MODULE)
    payload = large_input(key_module.canonical_json)
    for _ in range(3):
        key_module.compute_idempotency_key(payload)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        key_module.compute_idempotency_key(payload)
        timings.append((time.perf_counter() - start) * 1000)
    median = statistics.median(timings)
    return HashTiming(
        len(key_module.canonical_json(payload)),
        median,
        runs,
        Target("", round(median, 2), HASH_MAX_MS, "ms"),
    )


@dataclass
class KeyFunctionFigures:
    key_module: ImportTiming
    handler_module: ImportTiming
    key_hash: HashTiming


def measure_key_function(template: Template, environment: Mapping[str, str], options: BenchOptions) -> KeyFunctionFigures:
    roots = template.import_roots(KEY_FUNCTION)
    handler_module = template.function_properties(KEY_FUNCTION)["Handler"].rpartition(".")[0]
    layer_roots = roots[1:]
    return KeyFunctionFigures(
        key_module=measure_cold_import(
            layer_roots, KEY_MODULE, {}, options.import_runs, "the key module alone, its layer on sys.path"
        ),
        handler_module=measure_cold_import(
            roots, handler_module, environment, options.import_runs, f"the {KEY_FUNCTION} handler module, as Lambda loads it"
        ),
        key_hash=measure_key_hash(roots, options.hash_runs),
    )


# ---------------------------------------------------------------------------- the whole bench
@dataclass
class PathsRun:
    """What the paths on one deployed stack used, and what the stack told about its functions."""

    paths: list[PathResult]
    waiters: WaiterSummary
    functions: dict[str, FunctionSpec]
    billed_ms: dict[str, int]
    key_function_environment: dict[str, str]


@dataclass
class BenchReport:
    options: BenchOptions
    prices: Prices
    paths: list[PathResult]
    waiters: WaiterSummary
    mix: Cost
    mix_states: float
    billed_ms: dict[str, int]
    functions: dict[str, FunctionSpec]
    key_function: KeyFunctionFigures | None


def measure_paths(bench: Bench, options: BenchOptions, prices: Prices) -> PathsRun:
    """Every path on the deployed ``bench``, priced."""
    paths = measure_runs(bench)
    waiter_paths, waiters = measure_waiters(bench, paths[0], options)
    paths.extend(waiter_paths)
    for path in paths:
        path.cost = bench.cost(path.usage, prices)
    return PathsRun(
        paths=paths,
        waiters=waiters,
        functions=bench.functions,
        billed_ms={name: bench.timer.billed_ms(name) for name in bench.functions},
        key_function_environment=_function_environment(bench.stack, bench.functions[KEY_FUNCTION]),
    )


def _function_environment(stack: OfflineStack, function: FunctionSpec) -> dict[str, str]:
    """The function's environment as the emulator deployed it (what its module reads when imported)."""
    configuration = _lambda_client(stack).get_function_configuration(FunctionName=function.function_name)
    return dict(configuration.get("Environment", {}).get("Variables", {}))


def build_report(options: BenchOptions, prices: Prices, run: PathsRun, key_function: KeyFunctionFigures | None) -> BenchReport:
    by_key = {path.key: path for path in run.paths}
    hit, fresh = by_key["hit"], by_key["fresh"]
    assert hit.cost is not None and fresh.cost is not None
    return BenchReport(
        options=options,
        prices=prices,
        paths=run.paths,
        waiters=run.waiters,
        mix=_mix(hit.cost, fresh.cost),
        mix_states=MIX_HIT_SHARE * hit.usage.states_entered + (1 - MIX_HIT_SHARE) * fresh.usage.states_entered,
        billed_ms=run.billed_ms,
        functions=run.functions,
        key_function=key_function,
    )


def run_bench(options: BenchOptions) -> BenchReport:
    """Deploy a stack, measure every path on it, then the key function."""
    prices = Prices()
    with Bench.deployed(options) as bench:
        run = measure_paths(bench, options, prices)
    key_function = measure_key_function(Template.load(), run.key_function_environment, options)
    return build_report(options, prices, run, key_function)


def _mix(hit: Cost, fresh: Cost) -> Cost:
    share = MIX_HIT_SHARE
    return Cost(
        transitions=share * hit.transitions + (1 - share) * fresh.transitions,
        lambda_=share * hit.lambda_ + (1 - share) * fresh.lambda_,
        dynamodb=share * hit.dynamodb + (1 - share) * fresh.dynamodb,
    )


# ---------------------------------------------------------------------------- output
def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}"


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def render_markdown(report: BenchReport) -> str:
    lines = [
        "# Cost and latency per execution (offline emulator)",
        "",
        f"Prices: {PRICES_REGION} list prices, taken {PRICES_TAKEN} ({PRICES_SOURCE}); free tiers ignored.",
        _price_line(report),
        "",
        "| path | states entered (steps) | Lambda calls (envelope + steps) | DynamoDB requests | WRU / RRU "
        "| $/M transitions | $/M Lambda | $/M DynamoDB | $/M total | seed design | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in report.paths:
        lines.append(_table_row(report, path))
    lines += ["", _mix_line(report), "", *_waiter_lines(report), "", *_unpriced_lines(report)]
    if report.key_function is not None:
        lines += _key_function_lines(report.key_function)
    lines += ["", *_notes(report)]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _price_line(report: BenchReport) -> str:
    prices = report.prices
    durations = ", ".join(
        f"{name} {spec.memory_mb} MB {spec.architecture} × {report.billed_ms[name]} ms" for name, spec in report.functions.items()
    )
    gb_second = ", ".join(f"{arch} ${price:.10f}".rstrip("0") + " per GB-s" for arch, price in prices.lambda_per_gb_second.items())
    return (
        f"Standard ${prices.standard_per_1k_transitions} per 1,000 state transitions (billed transitions = states entered); "
        f"Lambda ${prices.lambda_per_million_requests:.2f} per 1M requests + {gb_second}, billed duration per call = median "
        f"measured in-process handler time rounded up to 1 ms ({durations}); DynamoDB on-demand "
        f"${prices.dynamodb_per_million_wru} per 1M WRU, ${prices.dynamodb_per_million_rru} per 1M RRU."
    )


def _table_row(report: BenchReport, path: PathResult) -> str:
    usage, cost = path.usage, path.cost
    assert cost is not None
    envelope, steps = _split_calls(report, usage)
    states = f"{usage.states_entered} ({usage.step_states})"
    if "owner_extra_states" in path.notes:
        states += f": waiter {path.notes['waiter_states_entered']}, owner {path.notes['owner_extra_states']:+d}"
    verdicts = [target.verdict() for target in path.targets] or ["—"]
    targets = [target.describe() for target in path.targets] or ["—"]
    cells = [
        path.label,
        states,
        f"{envelope} + {steps}",
        usage.dynamodb.describe(),
        f"{_number(usage.dynamodb.wru)} / {_number(usage.dynamodb.rru)}",
        _usd(cost.transitions),
        _usd(cost.lambda_),
        _usd(cost.dynamodb),
        _usd(cost.total),
        path.reference,
        "; ".join(targets),
        "; ".join(verdicts),
    ]
    return "| " + " | ".join(cells) + " |"


def _split_calls(report: BenchReport, usage: Usage) -> tuple[int, int]:
    envelope = sum(calls for name, calls in usage.lambda_calls.items() if report.functions[name].envelope)
    return envelope, sum(usage.lambda_calls.values()) - envelope


def _mix_line(report: BenchReport) -> str:
    mix = report.mix
    return (
        f"**Mix of {MIX_HIT_SHARE:.0%} hits and {1 - MIX_HIT_SHARE:.0%} fresh runs:** ${_usd(mix.total)} per million executions "
        f"(transitions ${_usd(mix.transitions)}, Lambda ${_usd(mix.lambda_)}, DynamoDB ${_usd(mix.dynamodb)}); "
        f"{report.mix_states:.1f} states entered per execution on average."
    )


def _waiter_lines(report: BenchReport) -> list[str]:
    waiters = report.waiters
    growth = waiters.growth_per_10s
    latencies = waiters.latencies_declared_s
    walls_ms = ", ".join(f"{wall * 1000:.0f}" for wall in waiters.latencies_wall_s)
    return [
        f"**Waiter cost growth** per 10 s of waiting: {growth['states']:+.1f} states, {growth['lambda_calls']:+.1f} Lambda calls, "
        f"{growth['dynamodb_requests']:+.1f} DynamoDB requests. Target: {waiters.growth_target.describe()}: "
        f"{waiters.growth_target.verdict()}.",
        "",
        f"**Waiter latency** after the owner finished, declared seconds (as on AWS): median {statistics.median(latencies):.2f} s, "
        f"worst {max(latencies):.2f} s over {len(latencies)} waiters (emulator wall ms: {walls_ms}; time_scale {waiters.time_scale}). "
        f"Target: {waiters.latency_target.describe()}: {waiters.latency_target.verdict()}.",
    ]


def _unpriced_lines(report: BenchReport) -> list[str]:
    unpriced = Counter[str]()
    for path in report.paths:
        unpriced.update({name: count for name, count in path.usage.dynamodb.unpriced.items() if count > 0})
    if not unpriced:
        return []
    return [f"Warning: request units not computed for {', '.join(sorted(unpriced))}: their DynamoDB cost is missing.", ""]


def _key_function_lines(figures: KeyFunctionFigures) -> list[str]:
    lines = ["## The key function", "", "| figure | median | runs | target | met? |", "|---|---|---|---|---|"]
    for timing in (figures.key_module, figures.handler_module):
        lines.append(
            f"| cold import of `{timing.module}` ({timing.label}) | {timing.median_ms:.1f} ms "
            f"| {len(timing.runs_ms)} | {timing.target.describe()} | {timing.target.verdict()} |"
        )
    key_hash = figures.key_hash
    lines.append(
        f"| key of a {key_hash.input_bytes / 1024:.0f} KiB input (canonical JSON + SHA-256) | {key_hash.median_ms:.2f} ms "
        f"| {key_hash.runs} | {key_hash.target.describe()} | {key_hash.target.verdict()} |"
    )
    lines.append("")
    for timing in (figures.key_module, figures.handler_module):
        largest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in timing.largest_imports_ms.items())
        lines.append(f"Largest imports of `{timing.module}` (cumulative, `-X importtime`): {largest or '—'}.")
    return lines


def _notes(report: BenchReport) -> list[str]:
    return [
        "Notes:",
        "- States entered are counted from each execution's history (every `…StateEntered` event, Parallel branches "
        "included); \"steps\" are the states that invoked a business step's function (a function without the envelope's layer).",
        "- Waiter rows are the marginal cost of one waiter: its own execution plus whatever its owner did beyond a lone "
        "fresh run (\"owner +n\" states; Lambda and DynamoDB likewise). The seed's k is the number of 10 s polls it "
        "would make in the same wait. Timings vary with the machine's load; counts do not.",
        "- DynamoDB: every item request that reached the emulator, from Lambda code and from the state machine's "
        "integration; a write is billed on the larger of the item before and after it, also when its condition fails.",
        f"- Emulator time: Wait states and Retry intervals last time_scale = {report.options.time_scale} × their declared "
        "seconds; declared time = wall time / time_scale for them, and a waiter has waited the declared `Seconds` of the "
        "Wait states it entered (one without Wait states: wall time / time_scale). Latency counts time in Wait states as "
        "declared and the rest as measured. Task timeouts (`TimeoutSecondsPath` of a `.waitForTaskToken` wait) and the "
        "machine's `TimeoutSeconds` are scaled too, a task timeout never below 0.5 s (see emulator/adapters.py).",
        "- Lambda duration is measured in process, where DynamoDB answers in microseconds; on AWS add its round trip "
        "(a few ms per call). Cold-start init time is not included. Cold imports run in fresh `python -I` "
        f"({sys.version.split()[0]} here; the functions run python3.13 on arm64), after one run that writes the .pyc files.",
    ]


def report_json(report: BenchReport) -> dict[str, Any]:
    return {
        "prices": {
            "region": PRICES_REGION,
            "taken": PRICES_TAKEN,
            "source": PRICES_SOURCE,
            **{name: value for name, value in asdict(report.prices).items()},
        },
        "options": {"quick": report.options.quick, "time_scale": report.options.time_scale},
        "functions": {
            name: {**asdict(spec), "billed_ms_per_call": report.billed_ms[name]} for name, spec in report.functions.items()
        },
        "paths": [_path_json(report, path) for path in report.paths],
        "mix": {"hit_share": MIX_HIT_SHARE, "states_entered": report.mix_states, "cost_per_million_usd": report.mix.as_dict()},
        "waiters": {
            "growth_per_10s": report.waiters.growth_per_10s,
            "growth_target": report.waiters.growth_target.as_dict(),
            "latencies_declared_s": report.waiters.latencies_declared_s,
            "latencies_wall_s": report.waiters.latencies_wall_s,
            "latency_target": report.waiters.latency_target.as_dict(),
        },
        "key_function": None if report.key_function is None else _key_function_json(report.key_function),
    }


def _path_json(report: BenchReport, path: PathResult) -> dict[str, Any]:
    envelope, steps = _split_calls(report, path.usage)
    dynamodb = path.usage.dynamodb
    return {
        "path": path.key,
        "label": path.label,
        "states_entered": path.usage.states_entered,
        "step_states": path.usage.step_states,
        "envelope_states": path.usage.envelope_states,
        "lambda_calls": path.usage.lambda_calls,
        "lambda_envelope_calls": envelope,
        "lambda_step_calls": steps,
        "dynamodb_requests": dict(dynamodb.requests),
        "dynamodb_refused": dict(dynamodb.refused),
        "wru": dynamodb.wru,
        "rru": dynamodb.rru,
        "cost_per_million_usd": path.cost.as_dict() if path.cost else None,
        "seed_reference": path.reference,
        "targets": [target.as_dict() for target in path.targets],
        **path.notes,
    }


def _key_function_json(figures: KeyFunctionFigures) -> dict[str, Any]:
    def timing(value: ImportTiming) -> dict[str, Any]:
        return {
            "label": value.label,
            "module": value.module,
            "median_ms": value.median_ms,
            "runs_ms": value.runs_ms,
            "largest_imports_ms": value.largest_imports_ms,
            "target": value.target.as_dict(),
        }

    return {
        "cold_import_key_module": timing(figures.key_module),
        "cold_import_handler_module": timing(figures.handler_module),
        "key_hash": {
            "input_bytes": figures.key_hash.input_bytes,
            "median_ms": figures.key_hash.median_ms,
            "runs": figures.key_hash.runs,
            "target": figures.key_hash.target.as_dict(),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost and latency per execution of the workflow, on the offline emulator.")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the markdown table")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a faster emulator clock")
    args = parser.parse_args(argv)
    try:
        report = run_bench(BenchOptions(quick=args.quick))
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report_json(report), indent=2) if args.json else render_markdown(report), end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
