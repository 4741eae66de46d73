"""The benchmark's counting (the ``bench`` package, ``make bench``) agrees with the executions it measures.

These test the bench's instruments on the real template, in quick mode: states from the
histories, Lambda calls per function of the template, DynamoDB requests and the request units
DynamoDB bills for them, the declared clock of the emulator, contention and the report's shape.
They assert exact counts, never timings, and not the figures against the targets: the product
may meet a target or miss it, the bench must measure either honestly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.clock import history_end, history_start
from bench.cold_start import BARE, TAKE_FUNCTION, handler_subjects, measure_cold_start
from bench.deployment import EXPRESS_PARAMETERS, MeteredStack, takes_task_token_length
from bench.key_hash import HASH_INPUT_BYTES, measure_key_hash
from bench.metering import item_size_bytes
from bench.options import BenchOptions
from bench.paths import PathResult, measure_express
from bench.prices import Prices
from bench.render import render_markdown, report_json
from bench.run import StandardRun, build_report, measure_standard
from bench.waiters import ContentionSummary, measure_contention, samples
from idempotency.key import compute_idempotency_key
from tests.integration.support import BUSINESS_STEP_FUNCTIONS, STEP_CALLS
from tools.template import Template

# Waits far apart: a waiter parked on a task token has waited wall time / time_scale, so a 0.2 s
# hiccup of a loaded machine adds 20 declared seconds to the shorter one.
OPTIONS = BenchOptions(quick=True, waiter_waits=(10.0, 60.0), contention=(1, 3))
SINGLE_EXECUTION_PATHS = ("fresh", "hit", "failed", "rerun")
TOKEN_LENGTH = OPTIONS.task_token_length if takes_task_token_length() else None
SAMPLE = samples()

FUNCTIONS = Template.load().resources_of_type("AWS::Serverless::Function")


@pytest.fixture(scope="module")
def measured() -> Iterator[tuple[MeteredStack, StandardRun]]:
    """Every Standard path measured once on one stack, which stays up for the tests that use it further."""
    with MeteredStack.deployed(OPTIONS.time_scale, task_token_length=TOKEN_LENGTH) as bench:
        yield bench, measure_standard(bench, OPTIONS, Prices(), SAMPLE)


@pytest.fixture(scope="module")
def contention() -> tuple[ContentionSummary, PathResult]:
    with MeteredStack.deployed(OPTIONS.contention_time_scale, task_token_length=TOKEN_LENGTH) as bench:
        summary, hit_after = measure_contention(bench, OPTIONS, SAMPLE, TOKEN_LENGTH)
        hit_after.cost = bench.cost(hit_after.usage, Prices())
        return summary, hit_after


@pytest.fixture(scope="module")
def express() -> list[PathResult]:
    with MeteredStack.deployed(OPTIONS.time_scale, EXPRESS_PARAMETERS, task_token_length=TOKEN_LENGTH) as bench:
        return measure_express(bench, Prices())


def _paths(measured: tuple[MeteredStack, StandardRun]) -> dict[str, PathResult]:
    return {path.key: path for path in measured[1].paths}


def _business_calls(path: PathResult) -> int:
    return sum(path.usage.lambda_calls[name] for name in BUSINESS_STEP_FUNCTIONS)


def test_every_function_of_the_template_is_counted(measured: tuple[MeteredStack, StandardRun]) -> None:
    functions = set(FUNCTIONS)
    assert set(measured[1].functions) == functions
    for path in measured[1].paths:
        assert set(path.usage.lambda_calls) == functions
    envelope = {name for name, spec in measured[1].functions.items() if spec.envelope}
    assert envelope == {
        "AcquireLockFunction",
        "WaitForOwnerFunction",
        "SaveOutcomeFunction",
        "ReleaseAbandonedRecordFunction",
        "FrontDoorFunction",
    }
    assert BUSINESS_STEP_FUNCTIONS and not envelope & set(BUSINESS_STEP_FUNCTIONS)


@pytest.mark.parametrize("key", SINGLE_EXECUTION_PATHS)
def test_states_and_lambda_calls_agree_with_the_history(measured: tuple[MeteredStack, StandardRun], key: str) -> None:
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


def test_a_hit_runs_no_business_step_and_a_fresh_run_does(measured: tuple[MeteredStack, StandardRun]) -> None:
    paths = _paths(measured)
    assert paths["hit"].usage.step_states == _business_calls(paths["hit"]) == 0
    assert paths["fresh"].usage.step_states == STEP_CALLS
    assert paths["fresh"].usage.envelope_states == paths["fresh"].usage.states_entered - _business_calls(paths["fresh"])


def test_the_meter_sees_the_writes_of_a_fresh_run(measured: tuple[MeteredStack, StandardRun]) -> None:
    bench = measured[0]
    fresh = _paths(measured)["fresh"]
    dynamodb = fresh.usage.dynamodb
    (execution,) = fresh.executions
    execution_input = json.loads(execution.history[0]["executionStartedEventDetails"]["input"])
    with bench.meter.not_counted():
        record = bench.stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"
    writes = sum(dynamodb.requests[op] - dynamodb.refused[op] for op in ("PutItem", "UpdateItem", "BatchWriteItem"))
    assert writes >= 1  # the record was taken and saved: whatever the layout, that is written
    assert dynamodb.wru >= writes


@pytest.mark.parametrize("key", [*SINGLE_EXECUTION_PATHS, "hit_1kib", "hit_250kib"])
def test_every_request_is_billed_at_least_its_minimum(measured: tuple[MeteredStack, StandardRun], key: str) -> None:
    dynamodb = _paths(measured)[key].usage.dynamodb
    assert not dynamodb.unpriced
    # A write costs at least 1 WRU, a read at least 0.5 RRU, whether or not its condition held.
    assert dynamodb.wru + 2 * dynamodb.rru >= dynamodb.total >= 1


def test_reads_inside_not_counted_are_left_out(measured: tuple[MeteredStack, StandardRun]) -> None:
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


def test_a_refused_write_is_billed_on_the_existing_item(measured: tuple[MeteredStack, StandardRun]) -> None:
    bench = measured[0]
    table, client = bench.stack.table_name, bench.stack.dynamodb
    exists = "attribute_not_exists(id)"
    before = bench.meter.snapshot()

    client.put_item(TableName=table, Item={"id": {"S": "bench-large"}, "payload": {"S": "x" * 2500}})  # 2.5 KB: 3 WRU
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):  # small on large: 3, the existing item
        client.put_item(TableName=table, Item={"id": {"S": "bench-large"}}, ConditionExpression=exists)
    client.put_item(TableName=table, Item={"id": {"S": "bench-small"}})  # 1
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):  # large on small: 1, not the 3 it asked for
        client.put_item(
            TableName=table, Item={"id": {"S": "bench-small"}, "payload": {"S": "x" * 2500}}, ConditionExpression=exists
        )

    counted = bench.meter.snapshot().minus(before)
    assert dict(counted.requests) == {"PutItem": 4}
    assert dict(counted.refused) == {"PutItem": 2}
    assert counted.wru == 3 + 3 + 1 + 1


def test_batches_and_queries_are_billed_item_by_item_and_page_by_page(
    measured: tuple[MeteredStack, StandardRun],
) -> None:
    bench = measured[0]
    table, client = bench.stack.table_name, bench.stack.dynamodb
    large, small = {"id": {"S": "bench-batch-large"}, "payload": {"S": "x" * 5000}}, {"id": {"S": "bench-batch-small"}}
    keys = [{"id": large["id"]}, {"id": small["id"]}, {"id": {"S": "bench-batch-absent"}}]
    before = bench.meter.snapshot()

    client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": large}}, {"PutRequest": {"Item": small}}]})
    written = bench.meter.snapshot().minus(before)
    client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
    strong = bench.meter.snapshot().minus(before)
    client.batch_get_item(RequestItems={table: {"Keys": keys}})
    eventual = bench.meter.snapshot().minus(before)
    client.query(
        TableName=table,
        KeyConditionExpression="id = :id",
        ExpressionAttributeValues={":id": large["id"]},
        ConsistentRead=True,
    )
    queried = bench.meter.snapshot().minus(before)
    client.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key}} for key in keys[:2]]})
    deleted = bench.meter.snapshot().minus(before)

    assert written.wru == 5 + 1  # 5 KB and a small item, each rounded up on its own
    assert strong.rru == 2 + 1 + 1  # 5 KB is two 4 KB units; an absent item still costs one
    assert eventual.rru - strong.rru == (2 + 1 + 1) / 2
    assert queried.rru - eventual.rru == 2  # one page, 5 KB
    assert deleted.wru - queried.wru == 5 + 1  # a delete is billed on the item it deletes
    assert dict(deleted.requests) == {"BatchWriteItem": 2, "BatchGetItem": 2, "Query": 1}
    assert not deleted.unpriced


def test_item_size_counts_utf8_bytes_of_names_and_values() -> None:
    assert item_size_bytes(None) == 0
    assert item_size_bytes({"id": {"S": "é"}}) == 2 + 2
    assert item_size_bytes({"ä": {"N": "12345"}}) == 2 + 4  # 5 significant digits: 3 bytes, plus 1
    assert item_size_bytes({"m": {"M": {"k": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    assert item_size_bytes({"l": {"L": [{"S": "ab"}, {"NULL": True}]}}) == 1 + 3 + (1 + 2) + (1 + 1)


def test_a_waiter_row_counts_the_waiter_not_the_owners_steps(measured: tuple[MeteredStack, StandardRun]) -> None:
    fresh = _paths(measured)["fresh"]
    for wait in OPTIONS.waiter_waits:
        path = _paths(measured)[f"waiter_{wait:.0f}s"]
        owner, waiter = path.executions
        assert owner.status == waiter.status == "SUCCEEDED"
        # Its states: the waiter's own history, plus whatever the owner did beyond a lone fresh run.
        assert (
            path.usage.states_entered
            == len(waiter.states_entered) + len(owner.states_entered) - fresh.usage.states_entered
        )
        assert path.usage.step_states == _business_calls(path) == 0
        assert path.notes["released_after_s"] >= wait
        assert path.notes["waited_s"] >= path.notes["released_after_s"]


@pytest.mark.parametrize("size", OPTIONS.result_sizes)
def test_a_hit_by_result_size_returns_a_result_of_that_size(
    measured: tuple[MeteredStack, StandardRun], size: int
) -> None:
    path = _paths(measured)[f"hit_{size // 1024}kib"]
    (hit,) = path.executions
    assert path.notes["result_bytes"] == size == len(json.dumps(hit.output, separators=(",", ":")).encode("utf-8"))
    assert path.notes["record_bytes"] > size  # the record holds the result and more
    assert path.usage.step_states == _business_calls(path) == 0
    rru_target = next(target for target in path.targets if target.what.startswith("RRU"))
    assert rru_target.limit == math.ceil(path.notes["record_bytes"] / 4096)


def test_the_declared_clock_counts_a_wait_as_its_declared_seconds() -> None:
    from bench.clock import DeclaredClock

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
    assert [(wait.waited_before_s, wait.still_waiting) for wait in clock.waits_entered(history)] == [
        (0, False),
        (10, True),
    ]
    assert clock.waited(history, until=at(230)) == 20


def test_contention_runs_the_steps_once_and_counts_per_waiter(contention: tuple[ContentionSummary, PathResult]) -> None:
    summary, _ = contention
    assert [row.waiters for row in summary.rows] == list(OPTIONS.contention_sizes)
    for row in summary.rows:
        assert len(row.run.executions) == row.waiters + 1
        assert row.run.registered_before_release == row.waiters
        assert row.step_calls == STEP_CALLS
        assert (row.failed, row.distinct_outputs) == (0, 1)
        assert len(row.run.woken_at) == row.waiters  # each woken by the owner's save, none timed out
        assert row.wru_per_waiter > 0
    # Every token a waiter registered with was seen, at the length the emulator gave it.
    assert sum(summary.token_lengths.values()) >= sum(OPTIONS.contention_sizes)
    if TOKEN_LENGTH is not None:
        assert set(summary.token_lengths) == {TOKEN_LENGTH}
    assert summary.spread_target is not None


def test_a_hit_on_a_key_that_had_waiters_runs_nothing_but_the_take(
    contention: tuple[ContentionSummary, PathResult],
) -> None:
    summary, hit = contention
    assert hit.key == f"hit_after_{OPTIONS.contention_sizes[-1]}_waiters"
    assert sum(hit.usage.lambda_calls.values()) == 1
    assert hit.usage.step_states == 0
    assert hit.notes["record_bytes"] > 0
    # Measured once the woken executions had all ended, not while they ran beside it.
    (hit_execution,) = hit.executions
    woken = summary.rows[-1].run.executions
    assert history_start(hit_execution.history) >= max(history_end(execution.history) for execution in woken)


def test_the_express_paths_are_priced_per_request(express: list[PathResult]) -> None:
    paths = {path.key: path for path in express}
    assert list(paths) == ["express_fresh", "express_hit", "express_failed", "express_rerun"]
    assert paths["express_fresh"].notes["step_calls"] == STEP_CALLS
    assert paths["express_hit"].notes["step_calls"] == 0
    assert sum(paths["express_hit"].usage.lambda_calls.values()) == 1
    for path in express:
        assert path.cost is not None and path.cost.workflow >= Prices().express_per_million_requests
        assert path.usage.states_entered == 0  # Step Functions keeps no history of Express executions


def test_the_report_has_every_row_and_target_and_serializes(
    measured: tuple[MeteredStack, StandardRun],
    contention: tuple[ContentionSummary, PathResult],
    express: list[PathResult],
) -> None:
    report = build_report(OPTIONS, Prices(), measured[1])
    report.contention, hit_after = contention
    report.paths.append(hit_after)
    report.express = express
    markdown = render_markdown(report)
    for path in [*report.paths, *express]:
        assert f"| {path.label} |" in markdown
        for target in path.targets:
            assert target.describe() in markdown
    for row in report.contention.rows:
        assert f"| {row.waiters} | {row.run.registered_before_release} |" in markdown
        for target in row.targets:
            assert target.describe() in markdown
    assert report.contention.spread_target is not None and report.contention.spread_target.describe() in markdown
    assert "Task tokens:" in markdown

    figures = json.loads(json.dumps(report_json(report)))
    assert [path["path"] for path in figures["paths"]] == [path.key for path in report.paths]
    assert [row["waiters"] for row in figures["contention"]["rows"]] == list(OPTIONS.contention_sizes)
    assert figures["contention"]["task_token_length_requested"] == TOKEN_LENGTH
    assert [path["path"] for path in figures["express"]] == [path.key for path in express]
    fresh = figures["paths"][0]
    assert fresh["cost_per_million_usd"]["workflow"] == pytest.approx(fresh["states_entered"] * 25.0)
    assert {"hit_1kib", "hit_250kib"} <= {path["path"] for path in figures["paths"]}
    # The front door's rows beside the envelope's, named so, and the mix through it with its target.
    assert all("front door" in path["label"] for path in figures["paths"] if path["path"].startswith("front_door"))
    assert {"front_door_hit", "front_door_miss"} <= {path["path"] for path in figures["paths"]}
    assert figures["front_door_mix"]["target"]["limit"] == 25.0
    assert "through the front door" in markdown


def test_a_front_door_hit_is_one_call_and_one_read_and_its_miss_runs_the_envelope_once(
    measured: tuple[MeteredStack, StandardRun],
) -> None:
    paths = _paths(measured)
    hit, miss, fresh = paths["front_door_hit"], paths["front_door_miss"], paths["fresh"]

    assert hit.usage.states_entered == 0
    assert hit.usage.lambda_calls == {**{name: 0 for name in hit.usage.lambda_calls}, "FrontDoorFunction": 1}
    assert (hit.usage.dynamodb.wru, hit.usage.dynamodb.requests) == (0, {"GetItem": 1})
    assert miss.usage.states_entered == fresh.usage.states_entered
    assert miss.usage.lambda_calls["FrontDoorFunction"] == 1
    assert sum(miss.usage.lambda_calls.values()) == sum(fresh.usage.lambda_calls.values()) + 1
    assert miss.usage.dynamodb.rru == fresh.usage.dynamodb.rru + 1
    assert hit.cost is not None and any(target.unit == "$" for target in hit.targets)


def test_the_cold_start_probes_run_side_by_side(measured: tuple[MeteredStack, StandardRun]) -> None:
    template = Template.load()
    # The handler is imported with the environment the stack deployed it with.
    subjects = handler_subjects(template, measured[1].environments, [TAKE_FUNCTION])
    cold = measure_cold_start(subjects, rounds=1, breakdown_of=(TAKE_FUNCTION,))
    assert [timing.subject.label for timing in cold.timings] == [BARE, TAKE_FUNCTION]
    take = cold.of(TAKE_FUNCTION)
    assert take.ratio_to_bare is not None and take.ratio_to_bare > 0
    assert take.target is not None and take.target.limit == 1.10
    assert "boto3" in take.largest_imports_ms
    key_hash = measure_key_hash(template.import_roots(TAKE_FUNCTION), runs=2)
    assert key_hash.input_bytes >= HASH_INPUT_BYTES
    assert key_hash.median_ms > 0
