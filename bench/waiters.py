"""Paths with waiters: one waiter's cost and latency, and contention (N duplicates of one input).

* A waiter: the owner is held inside a business step while a second execution with the same
  input waits W declared seconds; then the owner is released. Its row is the waiter's marginal cost.
* Contention: N + 1 executions of one input start together; the one that takes the record is held
  in its steps until the N others wait for it, then released. The row gives DynamoDB units per
  waiter, the time from the save to the last waiter woken, and issue 12's hot-key checks: the
  steps ran once, every execution returned the same output, none failed.
* A hit on a key that had waiters: what a later hit pays for the waiters that were there.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.clock import DeclaredClock, history_end, history_start, wait_intervals
from bench.deployment import MeteredStack
from bench.metering import Counters, Usage, count_step_states
from bench.options import BenchOptions
from bench.paths import (
    FRESH_EVENT,
    HOLD_FUNCTION,
    SEED_POLL_SECONDS,
    PathResult,
    expect,
    hit_targets,
    load_event,
    seed_waiter_reference,
)
from bench.targets import UNITS_PER_WAITER_SPREAD, WAITER_GROWTH_LIMIT, WAITER_MAX_LATENCY_S, WAKE_ALL_MAX_S, Target
from emulator import ExecutionResult, OfflineStack
from emulator.adapters import Gate, Handler

# The envelope functions a waiter registers with (its .waitForTaskToken task) and the owner saves with.
WAITER_FUNCTION = "WaitForOwnerFunction"
SAVE_FUNCTION = "SaveOutcomeFunction"


def samples() -> Callable[[], int]:
    """Distinct numbers for inputs that need a key of their own."""
    counter = iter(range(1, 1_000_000))
    return lambda: next(counter)


# ---------------------------------------------------------------------------- one waiter
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


def run_waiter(
    bench: MeteredStack, execution_input: Any, declared_wait_s: float, release_delay_s: float = 0.0
) -> WaiterRun:
    """Hold an owner in a business step, let a second execution with its input wait, then release it.

    ``release_delay_s`` (declared) moves the release later within the waiter's Wait, for latency samples.
    """
    stack = bench.stack
    gate = Gate(timeout=120)
    before = bench.counters()
    with stack.lambdas.intercept(HOLD_FUNCTION, gate):
        try:
            owner_arn = stack.start_execution(execution_input)
            expect(gate.arrived.wait(30), "the owner never reached its business steps")
            waiter_arn = stack.start_execution(execution_input)
            released_after_s = _let_wait(stack, bench.clock, waiter_arn, declared_wait_s)
            time.sleep(release_delay_s * stack.time_scale)
        finally:
            gate.open()  # also on an error, so that no execution is left held
        owner = stack.wait_for(owner_arn, timeout=30)
        waiter = stack.wait_for(waiter_arn, timeout=30)
    counted = bench.counters().since(before)
    expect(owner.status == "SUCCEEDED", f"the owner {owner.status}: {owner.error} {owner.cause}")
    expect(
        waiter.status == "SUCCEEDED" and waiter.output == owner.output,
        f"the waiter {waiter.status} ({waiter.error}) or did not return the owner's output",
    )
    owner_end, waiter_end = history_end(owner.history), history_end(waiter.history)
    return WaiterRun(
        owner,
        waiter,
        counted,
        released_after_s=released_after_s,
        # A waiter parked on a task token (no Wait states) waited until its owner was released: the
        # owner's own finishing is slowed down on the emulator and would be counted a hundredfold.
        waited_s=bench.clock.waited(waiter.history, until=owner_end)
        if wait_intervals(waiter.history)
        else released_after_s,
        latency_wall_s=(waiter_end - owner_end).total_seconds(),
        latency_declared_s=bench.clock.seconds(waiter.history, owner_end, waiter_end),
    )


def _let_wait(stack: OfflineStack, clock: DeclaredClock, waiter_arn: str, declared_wait_s: float) -> float:
    """Return once the waiter has waited ``declared_wait_s`` declared seconds; return how long it waited.

    The waiter is released only while it is parked, never in the middle of a look:

    * in a Wait state: just after it enters one with at least ``declared_wait_s`` before it, so the
      owner has a whole poll interval to finish before the next look. This depends only on the
      history, not on when this thread runs.
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
            waited = (datetime.now(UTC) - history_start(history)).total_seconds() / stack.time_scale
            if waited >= declared_wait_s:
                return waited
        expect(time.monotonic() < deadline, f"the waiter never waited {declared_wait_s} declared seconds")
        time.sleep(2.5 * stack.time_scale)  # a quarter of a 10 s Wait: one is rarely missed


def waiter_path(bench: MeteredStack, run: WaiterRun, fresh: PathResult, declared_wait_s: float) -> PathResult:
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
        targets=[
            Target("returns after the owner finished in", round(run.latency_declared_s, 2), WAITER_MAX_LATENCY_S, "s")
        ],
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


def measure_waiters(
    bench: MeteredStack, fresh: PathResult, options: BenchOptions, sample: Callable[[], int]
) -> tuple[list[PathResult], WaiterSummary]:
    base_input = load_event(FRESH_EVENT)

    def distinct_input() -> dict[str, Any]:  # each waiter pair needs a key of its own
        return {**base_input, "benchSample": sample()}

    paths = [
        waiter_path(bench, run_waiter(bench, distinct_input(), wait), fresh, wait) for wait in options.waiter_waits
    ]
    latencies = [(path.notes["latency_declared_s"], path.notes["latency_wall_s"]) for path in paths]
    poll_s = float(bench.stack.parameters.get("PollIntervalSeconds", SEED_POLL_SECONDS))
    for index in range(1, options.extra_latency_samples + 1):
        # Released at other points of a poll interval: the latency of a polling waiter depends on it.
        run = run_waiter(
            bench, distinct_input(), options.waiter_waits[0], poll_s * index / (options.extra_latency_samples + 1)
        )
        latencies.append((run.latency_declared_s, run.latency_wall_s))

    # Growth over the declared waits asked for, never over two measured waits: a waiter parked on its
    # task token waits the emulator's wall time, which a busy machine stretches (the short one may
    # then wait longer). Both are released at the first moment they are parked past their ask.
    asked = sorted(options.waiter_waits)
    expect(asked[-1] > asked[0], f"the waiter waits {options.waiter_waits} must differ: no growth to measure")
    by_ask = dict(zip(options.waiter_waits, paths, strict=True))
    short, long = by_ask[asked[0]], by_ask[asked[-1]]
    per_10s = 10 / (asked[-1] - asked[0])
    growth = {
        "states": (long.usage.states_entered - short.usage.states_entered) * per_10s,
        "lambda_calls": (sum(long.usage.lambda_calls.values()) - sum(short.usage.lambda_calls.values())) * per_10s,
        "dynamodb_requests": (long.usage.dynamodb.total - short.usage.dynamodb.total) * per_10s,
    }
    worst = max(declared for declared, _ in latencies)
    summary = WaiterSummary(
        growth_per_10s=growth,
        growth_target=Target(
            "growth per 10 s of waiting", round(growth["states"], 2), WAITER_GROWTH_LIMIT, "states", strict=True
        ),
        latencies_declared_s=[declared for declared, _ in latencies],
        latencies_wall_s=[wall for _, wall in latencies],
        latency_target=Target("worst latency", round(worst, 2), WAITER_MAX_LATENCY_S, "s"),
        time_scale=bench.stack.time_scale,
    )
    long.targets.append(summary.growth_target)
    return paths, summary


# ---------------------------------------------------------------------------- contention
class _Calls:
    """Interceptor that notes when each call of a function started and how many have returned."""

    def __init__(self) -> None:
        self.started: list[datetime] = []
        self.returned = 0
        self._lock = threading.Lock()

    def __call__(self, handler: Handler, event: Any, context: Any) -> Any:
        with self._lock:
            self.started.append(datetime.now(UTC))
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self.returned += 1


@dataclass
class ContentionRun:
    """N duplicates waiting on one owner: what they all used, and when they were woken."""

    waiters: int
    executions: list[ExecutionResult]
    counted: Counters
    registered_before_release: int
    save_started: datetime | None
    woken_at: list[datetime]  # when each waiter's task-token wait ended with a wake-up
    execution_input: dict[str, Any]

    @property
    def wake_all_s(self) -> float | None:
        """Seconds from the owner's save to the last waiter woken (None: no waiter was woken)."""
        if self.save_started is None or not self.woken_at:
            return None
        return (max(self.woken_at) - self.save_started).total_seconds()


def run_contention(
    bench: MeteredStack, waiters: int, sample: Callable[[], int], register_timeout_s: float
) -> ContentionRun:
    """Start ``waiters`` + 1 executions of one input together; hold the one that takes it until the others wait."""
    stack = bench.stack
    execution_input = {**load_event(FRESH_EVENT), "benchContention": waiters, "benchSample": sample()}
    gate, registrations, saves = Gate(timeout=register_timeout_s + 120), _Calls(), _Calls()
    before = bench.counters()
    with _intercepted(stack, {HOLD_FUNCTION: gate, WAITER_FUNCTION: registrations, SAVE_FUNCTION: saves}):
        try:
            with ThreadPoolExecutor(max_workers=8) as pool:
                arns = list(
                    pool.map(
                        lambda _: stack.start_execution(execution_input, name=uuid.uuid4().hex), range(waiters + 1)
                    )
                )
            expect(gate.arrived.wait(register_timeout_s), "no execution reached the business steps")
            # Released once every waiter has registered, or at the deadline (a product that cannot
            # register them all shows it in the row instead of hanging the bench).
            deadline = time.monotonic() + register_timeout_s
            while registrations.returned < waiters and time.monotonic() < deadline:
                time.sleep(0.05)
            registered = registrations.returned
        finally:
            gate.open()
        results = [stack.wait_for(arn, timeout=register_timeout_s + 300) for arn in arns]
    counted = bench.counters().since(before)
    return ContentionRun(
        waiters=waiters,
        executions=results,
        counted=counted,
        registered_before_release=registered,
        save_started=min(saves.started) if saves.started else None,
        woken_at=[moment for result in results if (moment := _woken_at(result)) is not None],
        execution_input=execution_input,
    )


@contextlib.contextmanager
def _intercepted(stack: OfflineStack, interceptors: Mapping[str, Callable[[Handler, Any, Any], Any]]) -> Iterator[None]:
    with contextlib.ExitStack() as exit_stack:
        for logical_id, interceptor in interceptors.items():
            exit_stack.enter_context(stack.lambdas.intercept(logical_id, interceptor))
        yield


def _woken_at(result: ExecutionResult) -> datetime | None:
    """When the execution's task-token wait ended with a message (a wake-up), from its history."""
    woken = [
        event["timestamp"]
        for event in result.history
        if event["type"] == "TaskSucceeded"
        and str(event.get("taskSucceededEventDetails", {}).get("resource", "")).endswith("waitForTaskToken")
    ]
    return max(woken) if woken else None


@dataclass
class ContentionResult:
    """One contention row: N waiters on one owner, per waiter and as a whole."""

    waiters: int
    run: ContentionRun
    usage: Usage  # all N + 1 executions together
    wru_per_waiter: float
    rru_per_waiter: float
    step_calls: int
    failed: int
    distinct_outputs: int
    targets: list[Target] = field(default_factory=list)

    @property
    def units_per_waiter(self) -> float:
        return self.wru_per_waiter + self.rru_per_waiter


def contention_result(bench: MeteredStack, run: ContentionRun, fresh_usage: Usage) -> ContentionResult:
    """Units per waiter: what the N + 1 executions used beyond a lone fresh run, divided by N."""
    dynamodb = run.counted.dynamodb
    usage = Usage(
        states_entered=sum(len(result.states_entered) for result in run.executions),
        step_states=sum(count_step_states(result.history, bench.step_function_names) for result in run.executions),
        lambda_calls=run.counted.lambda_calls,
        dynamodb=dynamodb,
    )
    n = max(1, run.waiters)
    step_calls = bench.step_calls(usage)
    outputs = {json.dumps(result.output, sort_keys=True) for result in run.executions if result.status == "SUCCEEDED"}
    failed = sum(1 for result in run.executions if result.status != "SUCCEEDED")
    targets = [
        Target("business step calls", step_calls, bench.step_calls(fresh_usage)),
        Target("failed executions", failed, 0),
        Target("distinct outputs", len(outputs), 1),
    ]
    if run.wake_all_s is not None:
        targets.append(Target("save to last waiter woken", round(run.wake_all_s, 2), WAKE_ALL_MAX_S, "s"))
    return ContentionResult(
        waiters=run.waiters,
        run=run,
        usage=usage,
        wru_per_waiter=(dynamodb.wru - fresh_usage.dynamodb.wru) / n,
        rru_per_waiter=(dynamodb.rru - fresh_usage.dynamodb.rru) / n,
        step_calls=step_calls,
        failed=failed,
        distinct_outputs=len(outputs),
        targets=targets,
    )


@dataclass
class ContentionSummary:
    """Contention at each N, and whether units per waiter stay the same as N grows."""

    rows: list[ContentionResult]
    spread_target: Target | None
    token_lengths: dict[int, int]  # task token length -> how many tokens of it the functions received
    token_length_requested: int | None  # None: the emulator cannot set it; its own tokens were used
    time_scale: float


def measure_contention(
    bench: MeteredStack, options: BenchOptions, sample: Callable[[], int], token_length_requested: int | None
) -> tuple[ContentionSummary, PathResult]:
    """Contention at each of ``options.contention_sizes``, then a hit on the key that had the most waiters."""
    fresh_input = {**load_event(FRESH_EVENT), "benchSample": sample()}
    fresh, fresh_usage = bench.run(fresh_input)
    expect(fresh.status == "SUCCEEDED", f"the fresh run on the contention stack {fresh.status}: {fresh.error}")
    hit, plain_hit_usage = bench.run(fresh_input)
    expect(hit.status == "SUCCEEDED", f"the hit on the contention stack {hit.status}: {hit.error}")
    rows = []
    for n in options.contention_sizes:
        run = run_contention(bench, n, sample, register_timeout_s=30 + n * 0.2)
        rows.append(contention_result(bench, run, fresh_usage))
    per_waiter = [row.units_per_waiter for row in rows if row.waiters > 0]
    spread = None
    if len(per_waiter) > 1 and min(per_waiter) > 0:
        spread = Target(
            "units per waiter, largest / smallest N",
            round(max(per_waiter) / min(per_waiter), 2),
            UNITS_PER_WAITER_SPREAD,
            "x",
        )
    summary = ContentionSummary(
        rows=rows,
        spread_target=spread,
        token_lengths=dict(bench.tokens.lengths),
        token_length_requested=token_length_requested,
        time_scale=bench.stack.time_scale,
    )
    return summary, hit_after_waiters(bench, rows[-1], plain_hit_usage)


def hit_after_waiters(bench: MeteredStack, row: ContentionResult, plain_hit: Usage) -> PathResult:
    """A hit on the key the largest contention run used: it should pay no more than a hit on a key that
    never had waiters.

    Measured once the stack is quiet (every execution ended, every event delivered), and its take
    billed at its own call's duration: the take's median over the run's hundreds of calls, made
    while they all ran at once, is not what a hit costs.
    """
    _wait_until_quiet(bench)
    result, usage = bench.run(row.run.execution_input)
    expect(result.status == "SUCCEEDED", f"the hit on a key that had waiters {result.status}: {result.error}")
    owner = next(
        (
            execution
            for execution in row.run.executions
            if count_step_states(execution.history, bench.step_function_names)
        ),
        None,
    )
    record_bytes = bench.record_size(owner.execution_arn) if owner else 0
    targets = [
        *hit_targets(usage, record_bytes),
        Target("DynamoDB units vs a hit on a key without waiters", usage.dynamodb.units, plain_hit.dynamodb.units),
    ]
    return PathResult(
        f"hit_after_{row.waiters}_waiters",
        f"hit on a key that had {row.waiters} waiters",
        usage,
        [result],
        targets=targets,
        notes={"record_bytes": record_bytes, "plain_hit_units": plain_hit.dynamodb.units},
        billed_ms={
            name: bench.timer.billed_ms_of_last(name, calls) for name, calls in usage.lambda_calls.items() if calls
        },
    )


def _wait_until_quiet(bench: MeteredStack, timeout_s: float = 120.0) -> None:
    """Until no execution of the stack runs and every event has been delivered (bounded: a stuck run is an error)."""
    stack = bench.stack
    deadline = time.monotonic() + timeout_s
    while stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")["executions"]:
        expect(time.monotonic() < deadline, f"executions still running {timeout_s:.0f} s after the contention run")
        time.sleep(0.05)
    stack.events.wait_until_delivered()
