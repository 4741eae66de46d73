"""The paths of single executions: fresh, hit, failure and rerun; hits by result size; the Express variant.

Each path is driven only through the public ``OfflineStack`` API (no state names), so it keeps
working while the ASL changes. The waiters' paths are in ``bench.waiters``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.deployment import MeteredStack
from bench.metering import Usage
from bench.options import BenchError
from bench.prices import Cost, Prices
from bench.targets import (
    ENVELOPE_MAX_STATES,
    FRESH_MAX_RRU,
    HIT_MAX_LAMBDA_CALLS,
    HIT_MAX_STATES,
    Target,
    read_units_limit,
)
from emulator import ExecutionResult
from emulator.adapters import Handler
from tools.template import PROJECT_ROOT

EVENTS = PROJECT_ROOT / "events"
FRESH_EVENT = EVENTS / "execution_fresh.json"
# Its idempotencyKeyJmespath leaves forceFailure out of the key: the rerun after a failure has the same key.
RERUN_EVENT = EVENTS / "execution_jmespath_key.json"
FORCE_FAILURE_FIELD = "forceFailure"  # the example failing step's switch (functions/random_failure)
# The business step the bench holds an owner in, and whose first call it pads to a result size.
HOLD_FUNCTION = "ExampleStepFunction"
RESULT_BYTES_FIELD = "benchResultBytes"
PADDING_FIELD = "padding"
MIX_HIT_SHARE = 0.9

# The seed design's figures, as the issue gives them (its waiter looks again every 10 s).
SEED_POLL_SECONDS = 10
SEED_REFERENCE = {
    "fresh": "10 states (5 steps), 2 Lambda, 2 DynamoDB",
    "hit": "6 states, 1 Lambda, 2 DynamoDB",
}


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
    # Billed ms per call of a function on this path, where it differs from the function's median
    # over all its calls (the front door's hit is a read; its miss also starts an execution).
    billed_ms: dict[str, int] = field(default_factory=dict)


def load_event(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        event: dict[str, Any] = json.load(stream)
    return event


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def utf8_json_bytes(value: Any) -> int:
    """Size of a JSON value as Step Functions counts it: compact, UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def hit_targets(usage: Usage, record_bytes: int) -> list[Target]:
    """A hit: 3 states, 1 Lambda call, no write, at most 1 RRU per 4 KB of record."""
    return [
        Target("states entered", usage.states_entered, HIT_MAX_STATES),
        Target("Lambda calls", sum(usage.lambda_calls.values()), HIT_MAX_LAMBDA_CALLS),
        Target("WRU", usage.dynamodb.wru, 0),
        Target(f"RRU (record {record_bytes:,} B)", usage.dynamodb.rru, read_units_limit(record_bytes)),
    ]


def fresh_targets(usage: Usage) -> list[Target]:
    return [
        Target("states beyond the steps", usage.envelope_states, ENVELOPE_MAX_STATES),
        Target("RRU", usage.dynamodb.rru, FRESH_MAX_RRU),
    ]


def measure_runs(bench: MeteredStack) -> list[PathResult]:
    """Fresh, hit, failure and the rerun after it, each run alone."""
    fresh_input = load_event(FRESH_EVENT)
    fresh, fresh_usage = bench.run(fresh_input)
    expect(fresh.status == "SUCCEEDED", f"the fresh run {fresh.status}: {fresh.error} {fresh.cause}")
    hit, hit_usage = bench.run(fresh_input)
    expect(hit.status == "SUCCEEDED" and hit.output == fresh.output, f"the hit {hit.status} or changed the output")
    record_bytes = bench.record_size(fresh.execution_arn)

    rerun_input = load_event(RERUN_EVENT)
    failed, failed_usage = bench.run({**rerun_input, FORCE_FAILURE_FIELD: True})
    expect(failed.status == "FAILED", f"the forced failure {failed.status}, not FAILED")
    rerun, rerun_usage = rerun_once_quiet(bench, rerun_input)
    expect(rerun.status == "SUCCEEDED", f"the rerun after the failure {rerun.status}: {rerun.error} {rerun.cause}")
    expect(rerun_usage.step_states > 0, "the rerun after the failure did not run the steps")

    return [
        PathResult(
            "fresh", "fresh run, success", fresh_usage, [fresh], SEED_REFERENCE["fresh"], fresh_targets(fresh_usage)
        ),
        PathResult(
            "hit",
            "hit on the stored result",
            hit_usage,
            [hit],
            SEED_REFERENCE["hit"],
            hit_targets(hit_usage, record_bytes),
            notes={"record_bytes": record_bytes},
        ),
        PathResult("failed", "fresh run, steps fail", failed_usage, [failed]),
        PathResult(
            "rerun", "rerun after the failure, success", rerun_usage, [rerun], targets=fresh_targets(rerun_usage)
        ),
    ]


def padded_results(handler: Handler, event: Any, context: Any) -> Any:
    """Interceptor of HOLD_FUNCTION: its first step's output padded so the whole result has the input's size.

    The input asks for ``benchResultBytes``; the other steps' outputs stay as they are, so the
    padding is that many bytes less the rest of the result, which the bench measures first.
    """
    output = handler(event, context)
    padding = (event.get("input") or {}).get(RESULT_BYTES_FIELD) if isinstance(event, dict) else None
    if padding and isinstance(output, dict) and int(event.get("step", 0)) == 1:
        output = {**output, PADDING_FIELD: "x" * int(padding)}
    return output


def measure_result_sizes(bench: MeteredStack, sizes: tuple[int, ...], sample: Callable[[], int]) -> list[PathResult]:
    """A hit on a stored result of each size (1 KiB, 250 KiB): what DynamoDB bills for reading it back."""
    base = {**load_event(FRESH_EVENT), "benchSample": sample()}
    unpadded = utf8_json_bytes(bench.run(base)[0].output)
    # The padding field as it appears in the result, with an empty value.
    overhead = unpadded + len(f',"{PADDING_FIELD}":""')
    paths = []
    with bench.stack.lambdas.intercept(HOLD_FUNCTION, padded_results):
        for size in sizes:
            execution_input = {**base, "benchSample": sample(), RESULT_BYTES_FIELD: max(0, size - overhead)}
            fresh, _ = bench.run(execution_input)
            expect(
                fresh.status == "SUCCEEDED",
                f"the fresh run with a {size} B result {fresh.status}: {fresh.error} {fresh.cause}",
            )
            hit, usage = bench.run(execution_input)
            expect(
                hit.status == "SUCCEEDED" and hit.output == fresh.output, f"the hit on a {size} B result {hit.status}"
            )
            record_bytes = bench.record_size(fresh.execution_arn)
            result_bytes = utf8_json_bytes(hit.output)
            paths.append(
                PathResult(
                    f"hit_{_size_name(size)}",
                    f"hit on a {_size_label(result_bytes)} result",
                    usage,
                    [hit],
                    targets=hit_targets(usage, record_bytes),
                    notes={"result_bytes": result_bytes, "record_bytes": record_bytes},
                )
            )
    return paths


def _size_name(size: int) -> str:
    return f"{size // 1024}kib" if size % 1024 == 0 else f"{size}b"


def _size_label(size: int) -> str:
    return f"{size / 1024:.0f} KiB ({size:,} B)" if size >= 1024 else f"{size} B"


def measure_express(bench: MeteredStack, prices: Prices) -> list[PathResult]:
    """The Express variant's single-execution paths, priced per request and GB-second.

    Step Functions keeps no history of Express executions: states are not billed and not counted;
    business steps are counted by their Lambda calls.
    """
    expect(bench.express, "the Express paths need a stack deployed with WorkflowType=EXPRESS")
    measured = measure_express_runs(bench)
    paths = []
    for key, label, result, usage in measured:
        duration_ms = bench.duration_ms(result.execution_arn)
        path = PathResult(
            f"express_{key}",
            f"Express: {label}",
            usage,
            [result],
            notes={"duration_ms": duration_ms, "step_calls": bench.step_calls(usage)},
        )
        if key == "hit":
            path.targets = [
                Target("Lambda calls", sum(usage.lambda_calls.values()), HIT_MAX_LAMBDA_CALLS),
                Target("WRU", usage.dynamodb.wru, 0),
            ]
        path.cost = bench.cost(usage, prices, express_duration_ms=duration_ms)
        paths.append(path)
    return paths


def rerun_once_quiet(bench: MeteredStack, rerun_input: dict[str, Any]) -> tuple[ExecutionResult, Usage]:
    """The rerun after the forced failure, run as a retry that comes once the failed record is quiet.

    A failure whose other calls may still run (a Parallel's other branches, caught mid-call, or any
    Express execution, whose history cannot be read) keeps its record for ``LongestCallSeconds`` of
    the functions' clock: whether it does depends on timing. Those seconds are not scaled like the
    ASL's waits, so a rerun waiting through them could run out of its (scaled) wait; the bench moves
    the functions' clock past them instead, and measures the rerun alone either way.
    """
    quiet_s = int(bench.stack.parameters["LongestCallSeconds"]) + 2  # the save rounds the quiet period up
    with bench.stack.functions_clock.moved_on(quiet_s):
        return bench.run({**rerun_input, FORCE_FAILURE_FIELD: False})


def measure_express_runs(bench: MeteredStack) -> list[tuple[str, str, ExecutionResult, Usage]]:
    fresh_input = load_event(FRESH_EVENT)
    fresh, fresh_usage = bench.run(fresh_input)
    expect(fresh.status == "SUCCEEDED", f"the Express fresh run {fresh.status}: {fresh.error} {fresh.cause}")
    hit, hit_usage = bench.run(fresh_input)
    expect(
        hit.status == "SUCCEEDED" and hit.output == fresh.output, f"the Express hit {hit.status} or changed the output"
    )
    rerun_input = load_event(RERUN_EVENT)
    failed, failed_usage = bench.run({**rerun_input, FORCE_FAILURE_FIELD: True})
    expect(failed.status == "FAILED", f"the Express forced failure {failed.status}, not FAILED")
    rerun, rerun_usage = rerun_once_quiet(bench, rerun_input)
    expect(rerun.status == "SUCCEEDED", f"the Express rerun {rerun.status}: {rerun.error} {rerun.cause}")
    return [
        ("fresh", "fresh run, success", fresh, fresh_usage),
        ("hit", "hit on the stored result", hit, hit_usage),
        ("failed", "fresh run, steps fail", failed, failed_usage),
        ("rerun", "rerun after the failure, success", rerun, rerun_usage),
    ]


@dataclass
class Mix:
    """The cost of a day's traffic: MIX_HIT_SHARE hits, the rest fresh runs."""

    hit_share: float
    cost: Cost
    states: float


def mix(hit: PathResult, fresh: PathResult) -> Mix:
    assert hit.cost is not None and fresh.cost is not None
    share = MIX_HIT_SHARE
    states = share * hit.usage.states_entered + (1 - share) * fresh.usage.states_entered
    return Mix(share, Cost.mix(share, hit.cost, fresh.cost), states)


def seed_waiter_reference(waited_s: float) -> str:
    polls = math.ceil(waited_s / SEED_POLL_SECONDS)
    return f"3k+6 = {3 * polls + 6} states, 1 Lambda, k+2 = {polls + 2} DynamoDB (k = {polls})"
