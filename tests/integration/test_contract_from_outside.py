"""The contract as a client of the stack sees it: outcomes, execution histories and records.

Nothing here reaches into the emulator, so these tests run unchanged against a deployed stack
(``AWS_SAM_STACK_NAME``) as well as offline. Which steps ran is read from the history: a state
inside a Parallel state's branches is entered only when the business steps run.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulator import ExecutionResult, OfflineStack
from idempotency.key import compute_idempotency_key
from tests.integration.support import failing_steps


@pytest.fixture(scope="module")
def definition(stack: OfflineStack) -> dict[str, Any]:
    """The definition the stack runs (for a deployed stack: the deployed one)."""
    return json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"])


@pytest.fixture(scope="module")
def business_states(definition: dict[str, Any]) -> set[str]:
    """Names of the states inside the Parallel states' branches: the business steps."""
    return _branch_states(definition["States"])


def _branch_states(states: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for state in states.values():
        for branch in state.get("Branches", []):
            found |= set(branch["States"]) | _branch_states(branch["States"])
    return found


def steps_entered(result: ExecutionResult, business_states: set[str]) -> list[str]:
    return sorted(state for state in result.states_entered if state in business_states)


def dynamodb_tasks(result: ExecutionResult) -> int:
    """Requests the state machine itself made to DynamoDB (saving or recording a failure)."""
    return sum(
        1
        for event in result.history
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "dynamodb"
    )


def test_a_fresh_run_stores_its_result_and_a_repeat_returns_it_without_running_the_steps(
    stack: OfflineStack, unique: str, business_states: set[str]
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False, "nested": {"a": 1, "b": [1, 2]}}

    first = stack.run(execution_input)
    repeat = stack.run(
        input_json=f'{{"nested": {{"b": [1, 2], "a": 1}}, "forceFailure": false, "orderId": "{unique}"}}'
    )

    assert first.status == "SUCCEEDED", first.cause
    assert steps_entered(first, business_states) == sorted(business_states)
    assert repeat.status == "SUCCEEDED", repeat.cause
    assert repeat.output == first.output
    assert steps_entered(repeat, business_states) == []
    assert repeat.lambda_tasks == 1 and dynamodb_tasks(repeat) == 0
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None
    assert (record["executionstatus"], record["executionid"]) == ("SUCCESS", first.execution_arn)
    assert json.loads(record["executionresult"]) == first.output


@pytest.mark.offline_only(reason="makes a business step fail with a Lambda interceptor")
def test_a_failure_is_recorded_and_the_same_request_runs_the_steps_again(
    stack: OfflineStack, unique: str, business_states: set[str]
) -> None:
    failing = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "forceFailure": False}
    key = compute_idempotency_key(failing)

    with failing_steps(stack):
        failed = stack.run(failing)
    failed_record = stack.get_record(key)
    retried = stack.run(failing)

    assert failed.status == "FAILED"
    assert failed.error == "InjectedStepFailure"
    assert failed_record is not None
    assert (failed_record["executionstatus"], failed_record["error"], failed_record["cause"]) == (
        "FAILED",
        failed.error,
        failed.cause,
    )
    assert retried.status == "SUCCEEDED", retried.cause
    assert steps_entered(retried, business_states) == sorted(business_states)
    record = stack.get_record(key)
    assert record is not None and (record["executionstatus"], record["executionid"]) == (
        "SUCCESS",
        retried.execution_arn,
    )


def test_bad_input_fails_with_a_named_error_before_any_step_or_write(
    stack: OfflineStack, unique: str, business_states: set[str]
) -> None:
    result = stack.run({"idempotencyKeyJmespath": "orderId", "other": unique})

    assert result.status == "FAILED"
    assert result.error == "IdempotencyKeyEmptyError"
    assert "selected nothing" in json.loads(result.cause or "{}")["errorMessage"]
    assert steps_entered(result, business_states) == []
    assert dynamodb_tasks(result) == 0


def test_concurrent_executions_with_one_input_run_the_steps_once(
    stack: OfflineStack, unique: str, business_states: set[str]
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}

    arns = [stack.start_execution(execution_input) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(stack.wait_for, arns))

    assert [result.status for result in results] == ["SUCCEEDED"] * 4, [result.cause for result in results]
    assert all(result.output == results[0].output for result in results)
    ran_the_steps = [result.execution_arn for result in results if steps_entered(result, business_states)]
    assert len(ran_the_steps) == 1
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionid"] == ran_the_steps[0]
