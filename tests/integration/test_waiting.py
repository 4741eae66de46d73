"""Executions that find the record IN_PROGRESS: they wait, look again, and stop at the bound."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET, Gate, business_step_calls, compute_idempotency_key, wait_until

pytestmark = pytest.mark.offline_only(reason="holds and counts Lambda calls, overrides parameters")

WAIT_STATE = "Wait for the other execution to finish"
STEP_COUNT = 5


def test_waiter_returns_the_owners_result_without_running_any_step(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    gate = Gate()
    calls_before = business_step_calls(stack)
    with stack.lambdas.intercept("ExampleStepFunction", gate):
        owner_arn = stack.start_execution(execution_input)
        assert gate.arrived.wait(10), "the owner never reached its steps"
        looks_before = stack.lambdas.invocations("AcquireLockFunction")
        waiter_arn = stack.start_execution(execution_input)
        # Let the waiter find the record IN_PROGRESS and look again at least twice.
        wait_until(lambda: stack.lambdas.invocations("AcquireLockFunction") >= looks_before + 3, message="waiter polls")
        gate.open()
        owner = stack.wait_for(owner_arn)
        waiter = stack.wait_for(waiter_arn)

    assert owner.status == waiter.status == "SUCCEEDED"
    assert waiter.output == owner.output
    assert waiter.states_entered.count(WAIT_STATE) >= 2
    assert "Run the business steps" not in waiter.states_entered
    assert business_step_calls(stack) - calls_before == STEP_COUNT
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionid"] == owner_arn


def test_waiter_takes_the_record_when_the_owner_fails(stack: OfflineStack, unique: str) -> None:
    # Same key (orderId), but only the owner's input forces the failure.
    owner_input = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "forceFailure": True}
    waiter_input = {**owner_input, "forceFailure": False}
    gate = Gate()  # holds the owner just before its failing step fails
    with stack.lambdas.intercept("RandomFailureFunction", gate):
        owner_arn = stack.start_execution(owner_input)
        assert gate.arrived.wait(10)
        looks_before = stack.lambdas.invocations("AcquireLockFunction")
        waiter_arn = stack.start_execution(waiter_input)
        wait_until(lambda: stack.lambdas.invocations("AcquireLockFunction") >= looks_before + 2, message="waiter polls")
        gate.open()
        owner = stack.wait_for(owner_arn)
        waiter = stack.wait_for(waiter_arn)

    assert owner.status == "FAILED" and owner.error == "SimulatedStepFailure"
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert WAIT_STATE in waiter.states_entered
    assert "Run the business steps" in waiter.states_entered
    record = stack.get_record(compute_idempotency_key(owner_input))
    assert record is not None
    assert (record["executionstatus"], record["executionid"]) == ("SUCCESS", waiter_arn)


@pytest.mark.parametrize(("poll_interval", "expected_waits"), [(10, 3), (5, 6)])
def test_a_wait_that_runs_out_fails_with_a_named_error(poll_interval: int, expected_waits: int) -> None:
    parameters = {"PollIntervalSeconds": poll_interval, "WaitTimeoutSeconds": 30}
    time_scale = 0.01
    with OfflineStack(parameters, time_scale=time_scale, environment=QUIET) as stack:
        execution_input = {"orderId": "held", "forceFailure": False}
        gate = Gate()
        with stack.lambdas.intercept("ExampleStepFunction", gate):
            owner_arn = stack.start_execution(execution_input)
            assert gate.arrived.wait(10)
            waiter = stack.run(execution_input)
            gate.open()
            owner = stack.wait_for(owner_arn)

        record = stack.get_record(compute_idempotency_key(execution_input))

    assert waiter.status == "FAILED"
    assert waiter.error == "IdempotencyWaitTimeoutError"
    assert "WaitTimeoutSeconds=30" in json.loads(waiter.cause or "{}")["errorMessage"]
    # The bound is WaitTimeoutSeconds / PollIntervalSeconds waits, each PollIntervalSeconds long.
    assert waiter.states_entered.count(WAIT_STATE) == expected_waits
    for waited in _wait_durations(waiter.history):
        assert waited >= poll_interval * time_scale * 0.9
    assert owner.status == "SUCCEEDED"
    assert record is not None and record["executionid"] == owner_arn  # the waiter left the record alone


def test_concurrent_executions_with_one_input_run_the_steps_once(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    calls_before = business_step_calls(stack)

    arns = [stack.start_execution(execution_input) for _ in range(25)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(stack.wait_for, arns))

    assert [result.status for result in results] == ["SUCCEEDED"] * 25
    assert all(result.output == results[0].output for result in results)
    assert business_step_calls(stack) - calls_before == STEP_COUNT
    assert sum("Run the business steps" in result.states_entered for result in results) == 1


def _wait_durations(history: list[dict]) -> list[float]:
    entered = [event["timestamp"] for event in history if event["type"] == "WaitStateEntered"]
    exited = [event["timestamp"] for event in history if event["type"] == "WaitStateExited"]
    return [(end - start).total_seconds() for start, end in zip(entered, exited, strict=True)]
