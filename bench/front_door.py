"""The front door's paths, beside the envelope's: a hit answered by one read, a miss that starts the envelope.

The front door is called as a caller calls it (Lambda ``Invoke`` with the execution input); a miss
is measured until the execution it started has finished, so its row holds that execution's states,
calls and units as well as the front door's own call and read.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from bench.deployment import MeteredStack
from bench.metering import Usage
from bench.paths import FRESH_EVENT, Mix, PathResult, expect, load_event, mix
from bench.targets import (
    FRONT_DOOR_FRESH_EXTRA_LAMBDA_CALLS,
    FRONT_DOOR_FRESH_EXTRA_RRU,
    FRONT_DOOR_HIT_MAX_BILLED_MS,
    FRONT_DOOR_HIT_MAX_STATES,
    FRONT_DOOR_HIT_MAX_USD_PER_MILLION,
    FRONT_DOOR_MEMORY_MB,
    FRONT_DOOR_MIX_MAX_USD_PER_MILLION,
    HIT_MAX_LAMBDA_CALLS,
    Target,
    read_units_limit,
)

FRONT_DOOR = "FrontDoorFunction"
HIT, MISS = "front_door_hit", "front_door_miss"
HIT_TIMING_CALLS = 5


def call_front_door(bench: MeteredStack, execution_input: Any) -> tuple[dict[str, Any], float]:
    """Invoke the front door with ``execution_input``; its answer and the call's wall time in ms (emulator)."""
    client = boto3.client("lambda", region_name=bench.stack.sfn.meta.region_name)
    started = time.perf_counter()
    response = client.invoke(
        FunctionName=bench.functions[FRONT_DOOR].function_name, Payload=json.dumps(execution_input).encode()
    )
    latency_ms = (time.perf_counter() - started) * 1000
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    expect("FunctionError" not in response, f"the front door failed: {answer}")
    return answer, latency_ms


def measure_front_door(bench: MeteredStack, fresh: PathResult, sample: int) -> list[PathResult]:
    """A miss (the front door starts the envelope, measured until that execution ends), then a hit on its result."""
    execution_input = {**load_event(FRESH_EVENT), "benchSample": sample}
    before = bench.counters()
    started, miss_latency_ms = call_front_door(bench, execution_input)
    expect(started.get("outcome") == "STARTED", f"the front door's miss answered {started}")
    run = bench.stack.wait_for(started["executionArn"])
    expect(run.status == "SUCCEEDED", f"the execution the front door started {run.status}: {run.error} {run.cause}")
    miss_usage = bench.usage_of(run, bench.counters().since(before))

    miss_billed_ms = bench.timer.billed_ms_of_last(FRONT_DOOR, 1)
    before = bench.counters()
    answer, hit_latency_ms = call_front_door(bench, execution_input)
    counted = bench.counters().since(before)
    expect(
        answer == {"outcome": "COMPLETED", "key": started["key"], "result": run.output},
        f"the front door's hit answered {answer}",
    )
    hit_usage = Usage(states_entered=0, step_states=0, lambda_calls=counted.lambda_calls, dynamodb=counted.dynamodb)
    # The hit's billed duration: the median of a few hits (the first call of a client is not typical).
    for _ in range(HIT_TIMING_CALLS - 1):
        call_front_door(bench, execution_input)
    hit_billed_ms = bench.timer.billed_ms_of_last(FRONT_DOOR, HIT_TIMING_CALLS)
    record_bytes = bench.record_size(run.execution_arn)
    memory_mb = bench.functions[FRONT_DOOR].memory_mb

    hit = PathResult(
        HIT,
        "front door: hit on the stored result",
        hit_usage,
        [],
        targets=[
            Target("states entered", hit_usage.states_entered, FRONT_DOOR_HIT_MAX_STATES),
            Target("Lambda calls", sum(hit_usage.lambda_calls.values()), HIT_MAX_LAMBDA_CALLS),
            Target("billed ms per call", hit_billed_ms, FRONT_DOOR_HIT_MAX_BILLED_MS, "ms"),
            Target("memory", memory_mb, max(FRONT_DOOR_MEMORY_MB), "MB"),
            Target("WRU", hit_usage.dynamodb.wru, 0),
            Target(f"RRU (record {record_bytes:,} B)", hit_usage.dynamodb.rru, read_units_limit(record_bytes)),
        ],
        notes={
            "record_bytes": record_bytes,
            "latency_ms": round(hit_latency_ms, 2),
            "memory_mb": memory_mb,
            "billed_ms": hit_billed_ms,
        },
        billed_ms={FRONT_DOOR: hit_billed_ms},
    )
    miss = PathResult(
        MISS,
        "front door: miss, the envelope started (fresh run)",
        miss_usage,
        [run],
        targets=[
            Target(
                "Lambda calls (fresh run's + 1)",
                sum(miss_usage.lambda_calls.values()),
                sum(fresh.usage.lambda_calls.values()) + FRONT_DOOR_FRESH_EXTRA_LAMBDA_CALLS,
            ),
            Target(
                "RRU (fresh run's + 1)", miss_usage.dynamodb.rru, fresh.usage.dynamodb.rru + FRONT_DOOR_FRESH_EXTRA_RRU
            ),
        ],
        notes={"front_door_latency_ms": round(miss_latency_ms, 2), "front_door_billed_ms": miss_billed_ms},
        billed_ms={FRONT_DOOR: miss_billed_ms},
    )
    return [hit, miss]


def add_cost_targets(hit: PathResult) -> None:
    """Once priced: the hit's total against its dollar target."""
    assert hit.cost is not None
    hit.targets.append(Target("$ per million", round(hit.cost.total, 4), FRONT_DOOR_HIT_MAX_USD_PER_MILLION, "$"))


def front_door_mix(hit: PathResult, miss: PathResult) -> tuple[Mix, Target]:
    """The 90/10 mix of hits and fresh runs when every call comes through the front door, and its target."""
    through = mix(hit, miss)
    return through, Target("$ per million", round(through.cost.total, 2), FRONT_DOOR_MIX_MAX_USD_PER_MILLION, "$")
