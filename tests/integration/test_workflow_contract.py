"""The contract's behaviours, executed by the real state machine on the offline emulator."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from emulator import OfflineStack
from idempotency.key import compute_idempotency_key
from tests.integration.support import (
    BUSINESS_STEP_FUNCTIONS,
    INJECTED_FAILURE_MESSAGE,
    QUIET,
    STEP_CALLS,
    assert_steps_output,
    business_step_calls,
    failing_steps,
    intercept_steps,
)


@pytest.mark.offline_only(reason="counts Lambda calls")
def test_fresh_run_executes_every_step_once_and_stores_the_result(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False, "nested": {"key1": "value1"}}
    calls_before = {name: stack.lambdas.invocations(name) for name in BUSINESS_STEP_FUNCTIONS}

    result = stack.run(execution_input)

    assert result.status == "SUCCEEDED", result.cause
    assert_steps_output(result.output)
    calls = {name: stack.lambdas.invocations(name) - calls_before[name] for name in BUSINESS_STEP_FUNCTIONS}
    assert all(calls.values()) and sum(calls.values()) == STEP_CALLS, calls
    assert "Run the business steps" in result.states_entered

    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None
    assert record["executionstatus"] == "SUCCESS"
    assert json.loads(record["executionresult"]) == result.output
    assert record["executionid"] == result.execution_arn
    datetime.fromisoformat(record["starttime"].replace("Z", "+00:00"))  # ISO 8601
    assert "error" not in record and "cause" not in record


@pytest.mark.offline_only(reason="counts Lambda calls")
def test_repeat_returns_the_stored_result_without_running_any_step(stack: OfflineStack, unique: str) -> None:
    first = stack.run({"orderId": unique, "forceFailure": False, "nested": {"a": 1, "b": [1, 2]}})
    calls_after_first = business_step_calls(stack)

    # Same JSON value, other key order and whitespace: the same key.
    repeat = stack.run(
        input_json=f'{{ "nested": {{"b": [1, 2], "a": 1}},\n  "forceFailure": false, "orderId": "{unique}" }}'
    )

    assert repeat.status == "SUCCEEDED"
    assert repeat.output == first.output
    assert business_step_calls(stack) == calls_after_first
    assert repeat.lambda_tasks == 1
    assert "Run the business steps" not in repeat.states_entered
    assert repeat.states_entered[-1] == "Return the stored result"
    record = stack.get_record(
        compute_idempotency_key({"orderId": unique, "forceFailure": False, "nested": {"a": 1, "b": [1, 2]}})
    )
    assert record is not None and record["executionid"] == first.execution_arn  # the hit did not take the record


@pytest.mark.offline_only(reason="counts Lambda calls")
def test_failed_steps_are_recorded_and_a_later_execution_runs_them_again(stack: OfflineStack, unique: str) -> None:
    # The key is the order id only, so the same request can be retried with the failure switched off.
    failing = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "forceFailure": False}
    key = compute_idempotency_key(failing)

    with failing_steps(stack):
        failed = stack.run(failing)

    assert failed.status == "FAILED"
    assert failed.error == "InjectedStepFailure"
    assert INJECTED_FAILURE_MESSAGE in (failed.cause or "")
    record = stack.get_record(key)
    assert record is not None
    assert record["executionstatus"] == "FAILED"
    assert record["error"] == "InjectedStepFailure"
    assert record["cause"] == failed.cause
    assert "executionresult" not in record

    calls_before_retry = business_step_calls(stack)
    retried = stack.run(failing)

    assert retried.status == "SUCCEEDED", retried.cause
    assert_steps_output(retried.output)
    assert business_step_calls(stack) - calls_before_retry == STEP_CALLS
    record = stack.get_record(key)
    assert record is not None
    assert record["executionstatus"] == "SUCCESS"
    assert record["executionid"] == retried.execution_arn


@pytest.mark.offline_only(reason="counts Lambda calls")
def test_a_failure_repeated_runs_the_steps_each_time(stack: OfflineStack, unique: str) -> None:
    failing = {"orderId": unique, "forceFailure": False}
    failing_step = BUSINESS_STEP_FUNCTIONS[-1]
    with failing_steps(stack):
        calls_before = stack.lambdas.invocations(failing_step)
        first = stack.run(failing)
        calls_between = stack.lambdas.invocations(failing_step)
        second = stack.run(failing)

    assert (first.status, second.status) == ("FAILED", "FAILED")
    assert second.error == first.error == "InjectedStepFailure"
    # The failing step is called again by the repeat, as often as by the first run. The other
    # steps are not counted: the Parallel stops its other branches once one fails, so how many of
    # them were called by then depends on timing (as on AWS).
    first_calls = calls_between - calls_before
    assert first_calls >= 1
    assert stack.lambdas.invocations(failing_step) - calls_between == first_calls


@pytest.mark.offline_only(reason="counts Lambda calls")
def test_the_original_patterns_key_example_returns_the_stored_result_whatever_the_input_says_outside_the_key(
    stack: OfflineStack, unique: str
) -> None:
    # The seed's own example: "[nested.key1, nested.key2]" uses the values of the two nested
    # attributes to calculate the key, so the rest of the input may differ between repeats. The
    # default deployment validates no payload (as the seed, and Powertools), so a repeat with
    # another "top" is the same request: it returns the stored result and runs no step.
    expression = "[nested.key1, nested.key2]"
    first = stack.run(
        {
            "top": "level",
            "nested": {"key1": unique, "key2": "value2"},
            "idempotencyKeyJmespath": expression,
            "forceFailure": False,
        }
    )
    calls = business_step_calls(stack)
    record = stack.get_record(
        compute_idempotency_key({"idempotencyKeyJmespath": expression, "nested": {"key1": unique, "key2": "value2"}})
    )

    reordered = stack.run(
        {
            "forceFailure": False,
            "idempotencyKeyJmespath": expression,
            "nested": {"key2": "value2", "key1": unique},
            "top": "level",
        }
    )
    another_top = stack.run(
        {
            "top": "another level",
            "nested": {"key1": unique, "key2": "value2", "requestedAt": "later"},
            "idempotencyKeyJmespath": expression,
            "forceFailure": False,
        }
    )

    assert first.status == "SUCCEEDED"
    assert (reordered.status, reordered.output) == ("SUCCEEDED", first.output)
    assert (another_top.status, another_top.output) == ("SUCCEEDED", first.output)
    assert "Run the business steps" not in another_top.states_entered
    assert business_step_calls(stack) == calls
    assert record is not None and record["executionid"] == first.execution_arn and "payloadhash" not in record
    assert stack.get_record(record["id"]) == record

    other_key = stack.run(
        {
            "top": "level",
            "nested": {"key1": unique, "key2": "value3"},
            "idempotencyKeyJmespath": expression,
            "forceFailure": False,
        }
    )
    assert other_key.status == "SUCCEEDED"
    assert business_step_calls(stack) == calls + STEP_CALLS


@pytest.mark.offline_only(reason="intercepts Lambda calls")
def test_the_business_steps_receive_the_input_unchanged(stack: OfflineStack, unique: str) -> None:
    execution_input = {
        "orderId": unique,
        "forceFailure": False,
        "idempotencyKeyJmespath": "orderId",
        "deep": {"x": [1, {"y": None}]},
    }
    seen: list[object] = []

    def record_input(handler: Any, event: Any, context: Any) -> Any:
        seen.append(event["input"] if isinstance(event, dict) and "input" in event else event)
        return handler(event, context)

    with intercept_steps(stack, record_input):
        assert stack.run(execution_input).status == "SUCCEEDED"

    assert seen == [execution_input] * STEP_CALLS


EXPIRED_RECORDS: dict[str, dict[str, dict[str, Any]]] = {
    # status: the attributes that make an unexpired record of that status block or answer a run
    "SUCCESS": {"executionresult": {"S": json.dumps({"stale": True})}},
    "FAILED": {"error": {"S": "OldError"}, "cause": {"S": "old"}},
    "IN_PROGRESS": {"leaseexpiry": {"N": str(int(time.time()) + 86400)}, "waiters": {"M": {}}},
}


@pytest.mark.offline_only(reason="counts Lambda calls")
@pytest.mark.parametrize("status", EXPIRED_RECORDS)
def test_an_expired_record_counts_as_absent(stack: OfflineStack, unique: str, status: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    # A record whose ttl has passed but that DynamoDB has not deleted yet (it may take days).
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "id": {"S": stack.record_id(key)},
            "executionstatus": {"S": status},
            "executionid": {"S": "arn:aws:states:us-east-1:123456789012:execution:old:old"},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(int(time.time()) - 1)},
            **EXPIRED_RECORDS[status],
        },
    )
    calls = business_step_calls(stack)

    result = stack.run(execution_input)

    assert result.status == "SUCCEEDED"
    assert_steps_output(result.output)
    assert "Wait for the other execution to finish" not in result.states_entered
    assert business_step_calls(stack) == calls + STEP_CALLS
    record = stack.get_record(key)
    assert record is not None and record["executionid"] == result.execution_arn


def test_an_abandoned_lock_is_taken_over_once_its_lease_expires(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    now = int(time.time())
    # The owner crashed (or was stopped) mid-steps: IN_PROGRESS, lease expired, ttl far ahead.
    stack.dynamodb.put_item(
        TableName=stack.table_name,
        Item={
            "id": {"S": stack.record_id(key)},
            "executionstatus": {"S": "IN_PROGRESS"},
            "executionid": {"S": "arn:aws:states:us-east-1:123456789012:execution:crashed:crashed"},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(now + 86400)},
            "leaseexpiry": {"N": str(now - 1)},
        },
    )

    result = stack.run(execution_input)

    assert result.status == "SUCCEEDED"
    assert "Wait for the other execution to finish" not in result.states_entered
    record = stack.get_record(key)
    assert record is not None
    assert (record["executionstatus"], record["executionid"]) == ("SUCCESS", result.execution_arn)


@pytest.mark.offline_only(reason="deploys the emulator with a parameter override")
def test_ttl_is_the_record_ttl_parameter_after_the_start() -> None:
    with OfflineStack(
        {"RecordTtlSeconds": 120, "ExecutionTimeoutSeconds": 100, "WaitTimeoutSeconds": 90, "LongestCallSeconds": 10},
        environment=QUIET,
    ) as stack:
        execution_input = {"orderId": "ttl", "forceFailure": False}
        before = int(time.time())
        assert stack.run(execution_input).status == "SUCCEEDED"
        after = int(time.time())

        record = stack.get_record(compute_idempotency_key(execution_input))

    assert record is not None
    assert before + 120 <= record["ttl"] <= after + 120


def test_default_ttl_is_the_template_default(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    before = int(time.time())
    stack.run(execution_input)
    after = int(time.time())

    record = stack.get_record(compute_idempotency_key(execution_input))
    ttl_seconds = int(stack.parameters["RecordTtlSeconds"])

    assert ttl_seconds == 24 * 3600
    assert record is not None
    assert before + ttl_seconds <= record["ttl"] <= after + ttl_seconds
