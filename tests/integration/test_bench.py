"""The benchmark's counting (``scripts/bench.py``, ``make bench``) agrees with the executions it measures.

These test the bench's instruments on the real template, in quick mode: states from the
histories, Lambda calls per function of the template, DynamoDB requests and their request units,
the declared clock of the emulator. They do not test the figures against the targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.template import Template
from scripts.bench import (
    HASH_INPUT_BYTES,
    KEY_FUNCTION,
    KEY_MODULE,
    Bench,
    BenchOptions,
    DeclaredClock,
    PathResult,
    PathsRun,
    Prices,
    build_report,
    measure_cold_import,
    measure_key_hash,
    measure_paths,
    render_markdown,
    report_json,
)
from tests.integration.support import BUSINESS_STEP_FUNCTIONS, compute_idempotency_key

OPTIONS = BenchOptions(quick=True, waiter_waits=(10.0, 30.0))
SINGLE_EXECUTION_PATHS = ("fresh", "hit", "failed", "rerun")


FUNCTIONS = Template.load().resources_of_type("AWS::Serverless::Function")


@pytest.fixture(scope="module")
def measured() -> Iterator[tuple[Bench, PathsRun]]:
    """Every path measured once on one stack, which stays up for the tests that use it further."""
    with Bench.deployed(OPTIONS) as bench:
        yield bench, measure_paths(bench, OPTIONS, Prices())


def _paths(measured: tuple[Bench, PathsRun]) -> dict[str, PathResult]:
    return {path.key: path for path in measured[1].paths}


def _business_calls(path: PathResult) -> int:
    return sum(path.usage.lambda_calls[name] for name in BUSINESS_STEP_FUNCTIONS)


def test_every_function_of_the_envelope_and_its_steps_is_counted(measured: tuple[Bench, PathsRun]) -> None:
    template = Template.load()
    # The envelope's functions load its layer; the examples' state machines and functions are not benched.
    envelope = {
        name
        for name in template.resources_of_type("AWS::Serverless::Function")
        if any((root / "idempotency" / "__init__.py").exists() for root in template.import_roots(name)[1:])
    }
    functions = envelope | set(BUSINESS_STEP_FUNCTIONS)
    assert set(measured[1].functions) == functions
    for path in measured[1].paths:
        assert set(path.usage.lambda_calls) == functions
    assert {name for name, spec in measured[1].functions.items() if not spec.envelope} == set(BUSINESS_STEP_FUNCTIONS)


@pytest.mark.parametrize("key", SINGLE_EXECUTION_PATHS)
def test_states_and_lambda_calls_agree_with_the_history(measured: tuple[Bench, PathsRun], key: str) -> None:
    path = _paths(measured)[key]
    (execution,) = path.executions
    entered = [event for event in execution.history if event["type"].endswith("StateEntered")]
    assert path.usage.states_entered == len(entered) > 0
    # The registry counts invocations; the history counts the Lambda tasks the execution scheduled
    # (functions triggered by events, such as the release function, are not in it).
    event_driven = {name for name, resource in FUNCTIONS.items() if resource["Properties"].get("Events")}
    scheduled = sum(calls for name, calls in path.usage.lambda_calls.items() if name not in event_driven)
    assert scheduled == execution.lambda_tasks
    # Without retries, each business-step state invokes one business-step function once.
    assert path.usage.step_states == _business_calls(path)


def test_a_hit_runs_no_business_step_and_a_fresh_run_does(measured: tuple[Bench, PathsRun]) -> None:
    paths = _paths(measured)
    assert paths["hit"].usage.step_states == _business_calls(paths["hit"]) == 0
    assert paths["fresh"].usage.step_states > 0
    assert paths["fresh"].usage.envelope_states == paths["fresh"].usage.states_entered - _business_calls(paths["fresh"])


def test_the_meter_sees_the_writes_of_a_fresh_run(measured: tuple[Bench, PathsRun]) -> None:
    bench = measured[0]
    fresh = _paths(measured)["fresh"]
    dynamodb = fresh.usage.dynamodb
    (execution,) = fresh.executions
    # The envelope's functions take the record (PutItem) and save it (UpdateItem); the meter sees both.
    assert dynamodb.requests["PutItem"] >= 1
    assert dynamodb.requests["UpdateItem"] >= 1
    # The record the run left behind was written, and writes are billed.
    execution_input = json.loads(execution.history[0]["executionStartedEventDetails"]["input"])
    with bench.meter.not_counted():
        record = bench.stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"
    writes = sum(dynamodb.requests[op] - dynamodb.refused[op] for op in ("PutItem", "UpdateItem"))
    assert writes >= 1
    assert dynamodb.wru >= writes


def test_a_hit_is_counted_as_a_refused_write(measured: tuple[Bench, PathsRun]) -> None:
    hit = _paths(measured)["hit"].usage.dynamodb
    assert hit.total >= 1
    # A refused conditional write still consumes write units.
    assert hit.wru >= sum(hit.refused.values())


def test_reads_inside_not_counted_are_left_out(measured: tuple[Bench, PathsRun]) -> None:
    bench = measured[0]
    key = compute_idempotency_key({"benchTest": "not counted"})
    before = bench.meter.snapshot()
    with bench.meter.not_counted():
        bench.stack.get_record(key)
    assert bench.meter.snapshot().minus(before).total == 0

    bench.stack.get_record(key)  # strongly consistent read of an absent item: 1 RRU

    counted = bench.meter.snapshot().minus(before)
    assert dict(counted.requests) == {"GetItem": 1}
    assert (counted.wru, counted.rru) == (0, 1.0)


def test_write_units_follow_the_larger_item_also_when_refused(measured: tuple[Bench, PathsRun]) -> None:
    bench = measured[0]
    table, client = bench.stack.table_name, bench.stack.dynamodb
    large = {"id": {"S": "bench-units"}, "payload": {"S": "x" * 2500}}  # 2.5 KB: 3 write units
    before = bench.meter.snapshot()

    client.put_item(TableName=table, Item=large)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table, Item={"id": {"S": "bench-units"}}, ConditionExpression="attribute_not_exists(id)"
        )

    counted = bench.meter.snapshot().minus(before)
    assert dict(counted.requests) == {"PutItem": 2}
    assert dict(counted.refused) == {"PutItem": 1}
    assert counted.wru == 3 + 3  # the refused write is billed on the stored 2.5 KB item


def test_a_waiter_row_counts_the_waiter_not_the_owners_steps(measured: tuple[Bench, PathsRun]) -> None:
    fresh = _paths(measured)["fresh"]
    for wait in OPTIONS.waiter_waits:
        path = _paths(measured)[f"waiter_{wait:.0f}s"]
        owner, waiter = path.executions
        assert owner.status == waiter.status == "SUCCEEDED"
        # Its states: the waiter's own history, plus whatever the owner did beyond a lone fresh run.
        assert path.usage.states_entered == len(waiter.states_entered) + len(owner.states_entered) - fresh.usage.states_entered
        assert path.usage.step_states == _business_calls(path) == 0
        assert path.notes["released_after_s"] >= wait
        assert path.notes["waited_s"] >= path.notes["released_after_s"]


def test_the_declared_clock_counts_a_wait_as_its_declared_seconds() -> None:
    definition = {"States": {"Pause": {"Type": "Wait", "Seconds": 10}, "Look": {"Type": "Task"}}}
    clock = DeclaredClock(definition, time_scale=0.01)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)

    def at(ms: int) -> datetime:
        return t0 + timedelta(milliseconds=ms)

    history: list[dict[str, Any]] = [
        {"id": 1, "type": "ExecutionStarted", "timestamp": at(0)},
        {"id": 2, "type": "WaitStateEntered", "timestamp": at(20), "stateEnteredEventDetails": {"name": "Pause"}},
        # 130 ms on the emulator, not 100: the interpreter's overhead is not multiplied by 1 / time_scale.
        {"id": 3, "type": "WaitStateExited", "timestamp": at(150), "stateExitedEventDetails": {"name": "Pause"}},
        {"id": 4, "type": "WaitStateEntered", "timestamp": at(180), "stateEnteredEventDetails": {"name": "Pause"}},
    ]
    assert clock.seconds(history, at(0), at(180)) == pytest.approx(10 + 0.05)
    assert clock.seconds(history, at(85), at(150)) == pytest.approx(5)  # the second half of the first Wait
    assert [(wait.waited_before_s, wait.still_waiting) for wait in clock.waits_entered(history)] == [(0, False), (10, True)]
    assert clock.waited(history, until=at(230)) == 20


def test_the_report_has_a_row_per_path_and_serializes(measured: tuple[Bench, PathsRun]) -> None:
    report = build_report(OPTIONS, Prices(), measured[1], key_function=None)
    markdown = render_markdown(report)
    for path in measured[1].paths:
        assert f"| {path.label} |" in markdown
    figures = json.loads(json.dumps(report_json(report)))
    assert [path["path"] for path in figures["paths"]] == [path.key for path in measured[1].paths]
    fresh = figures["paths"][0]
    assert fresh["cost_per_million_usd"]["transitions"] == pytest.approx(fresh["states_entered"] * 25.0)


def test_the_key_function_probes_run() -> None:
    roots = Template.load().import_roots(KEY_FUNCTION)
    timing = measure_cold_import(roots[1:], KEY_MODULE, {}, runs=1, label="the key module")
    assert timing.median_ms > 0
    assert "jmespath" in timing.largest_imports_ms  # the key module's one third-party import
    key_hash = measure_key_hash(roots, runs=2)
    assert key_hash.input_bytes >= HASH_INPUT_BYTES
    assert key_hash.median_ms > 0
