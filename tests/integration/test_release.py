"""An owner that ends without saving (stopped, timed out, failed) does not block its key.

The workflow's ABORTED, TIMED_OUT and FAILED status-change events reach the release function
through the template's EventBridge rule; it deletes the record only if that execution still holds
it, and wakes the executions waiting for it.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from emulator import OfflineStack
from tests.integration.support import (
    QUIET,
    Gate,
    business_step_calls,
    compute_idempotency_key,
    held_owner,
    start_registered_waiter,
    wait_until,
)

RELEASE_FUNCTION = "ReleaseAbandonedRecordFunction"
STEP_COUNT = 5


def _invoke_release(stack: OfflineStack, execution_arn: str, execution_input: Any, *, include_input: bool = True) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "executionArn": execution_arn,
        "stateMachineArn": stack.state_machine_arn,
        "status": "ABORTED",
        "inputDetails": {"included": include_input},
    }
    if include_input:
        detail["input"] = json.dumps(execution_input)
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "detail": detail}
    response = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName=stack.physical_id(RELEASE_FUNCTION), Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


def test_a_stopped_owner_frees_its_key_for_the_next_execution(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    gate = Gate()
    calls = business_step_calls(stack)
    with stack.lambdas.intercept("ExampleStepFunction", gate), stack.lambdas.intercept("RandomFailureFunction", gate):
        owner_arn = stack.start_execution(execution_input)
        # Stop it with every branch of the Parallel state in flight.
        wait_until(lambda: business_step_calls(stack) == calls + STEP_COUNT, message="all the owner's steps to start")
        stack.sfn.stop_execution(executionArn=owner_arn)
        gate.open()  # the step in flight finishes; its execution is over
        owner = stack.wait_for(owner_arn)
    wait_until(lambda: stack.get_record(key) is None, message="the stopped owner's record to be released")
    calls = business_step_calls(stack)

    rerun = stack.run(execution_input)

    assert owner.status == "ABORTED"
    assert rerun.status == "SUCCEEDED"
    assert "Run the business steps" in rerun.states_entered
    assert business_step_calls(stack) - calls == STEP_COUNT


def test_a_waiter_of_a_stopped_owner_is_woken_and_takes_over() -> None:
    # Looks on its own only after 300 s: its wait task ending with a message, not a timeout, proves the release woke it.
    with OfflineStack({"PollIntervalSeconds": 300}, environment=QUIET) as stack:
        execution_input = {"orderId": "stopped", "forceFailure": False}
        gate = Gate()
        with stack.lambdas.intercept("ExampleStepFunction", gate), stack.lambdas.intercept("RandomFailureFunction", gate):
            owner_arn = stack.start_execution(execution_input)
            wait_until(lambda: business_step_calls(stack) == STEP_COUNT, message="all the owner's steps to start")
            waiter_arn = stack.start_execution(execution_input)
            wait_until(lambda: stack.lambdas.invocations("WaitForOwnerFunction") == 1, message="the waiter to register")
            stack.sfn.stop_execution(executionArn=owner_arn)
            gate.open()
            owner = stack.wait_for(owner_arn)
            waiter = stack.wait_for(waiter_arn)
        record = stack.get_record(compute_idempotency_key(execution_input))

    assert owner.status == "ABORTED"
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert "Run the business steps" in waiter.states_entered
    assert [event["type"] for event in waiter.history if event["type"] in ("TaskSucceeded", "TaskTimedOut")][:2] == ["TaskSucceeded"] * 2
    assert record is not None and (record["executionstatus"], record["executionid"]) == ("SUCCESS", waiter_arn)


def test_a_release_for_a_record_now_owned_by_another_execution_changes_nothing(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        held = stack.get_record(key)
        # A late event about an earlier owner of the same key, e.g. one whose lease was taken over.
        answer = _invoke_release(stack, owner_arn.replace(owner_arn.rsplit(":", 1)[1], "earlier-owner"), execution_input)
        still_held = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert answer == {"released": False, "key": key}
    assert still_held == held
    assert owner.status == "SUCCEEDED"


def test_a_release_leaves_a_saved_record_alone(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    result = stack.run(execution_input)
    saved = stack.get_record(compute_idempotency_key(execution_input))

    answer = _invoke_release(stack, result.execution_arn, execution_input)

    assert answer["released"] is False
    assert stack.get_record(compute_idempotency_key(execution_input)) == saved


def test_a_release_reads_the_input_when_the_event_left_it_out(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        # As if the execution had ended: EventBridge omits inputs too large for an event.
        answer = _invoke_release(stack, owner_arn, None, include_input=False)
        released = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert answer["released"] is True and answer["key"] == key
    assert released is None
    assert owner.error == "IdempotencyRecordLostError"  # it really had lost its record


def test_failed_executions_reach_the_release_function_and_bad_input_releases_nothing(stack: OfflineStack) -> None:
    invocations = stack.lambdas.invocations(RELEASE_FUNCTION)

    bad = stack.run(input_json="[1, 2]")
    deliveries = stack.events.wait_until_delivered()

    assert bad.status == "FAILED"
    mine = [delivery for delivery in deliveries if delivery.event["detail"]["executionArn"] == bad.execution_arn]
    assert [delivery.payload["released"] for delivery in mine] == [False]
    assert mine[0].payload["reason"] == "IdempotencyInputNotObjectError"
    assert stack.lambdas.invocations(RELEASE_FUNCTION) > invocations


def test_a_waiter_stopped_while_it_waits_is_aborted_at_once_and_leaves_the_record_alone(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, execution_input)
        stack.sfn.stop_execution(executionArn=waiter_arn)
        waiter = stack.wait_for(waiter_arn)
        held = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert waiter.status == "ABORTED", (waiter.error, waiter.cause)
    assert held is not None and held["executionid"] == owner_arn  # a waiter's end releases nothing
    assert owner.status == "SUCCEEDED"
