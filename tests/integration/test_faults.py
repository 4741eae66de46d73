"""Transient DynamoDB faults are retried under the error names the functions really report.

Every DynamoDB call of the envelope is made by its Lambda functions, whose SDK retries are off
(``settings.SDK_CONFIG``): a fault surfaces as the SDK's exception class, which Step Functions
reports as the error name (``ThrottlingException``, ...), and the ASL's Retry handles it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET, compute_idempotency_key, failing_dynamodb, wait_until

pytestmark = pytest.mark.offline_only(reason="injects DynamoDB faults into the emulator")

TRANSIENT_ERRORS = ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"]


def _task_failures(history: list[dict]) -> list[str]:
    return [event["taskFailedEventDetails"]["error"] for event in history if event["type"] == "TaskFailed"]


@pytest.mark.parametrize("error_code", TRANSIENT_ERRORS)
def test_saving_the_result_is_retried_on_transient_errors(stack: OfflineStack, unique: str, error_code: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with failing_dynamodb("update_item", error_code, times=2) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == [error_code] * 2
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_recording_a_failure_is_retried_on_throttling(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": True}
    with failing_dynamodb("update_item", "ThrottlingException", times=2):
        result = stack.run(execution_input)

    assert result.status == "FAILED"
    assert result.error == "SimulatedStepFailure"  # the steps' error, not the throttling
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "FAILED"


def test_taking_the_record_is_retried_on_throttling(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with failing_dynamodb("put_item", "ProvisionedThroughputExceededException", times=2) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == ["ProvisionedThroughputExceededException"] * 2
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_a_save_that_keeps_failing_is_released_when_the_execution_fails(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with failing_dynamodb("update_item", "ThrottlingException", times=100):
        result = stack.run(execution_input)
        # The failed execution's status-change event reaches the release function.
        wait_until(lambda: stack.get_record(key) is None, message="the release function to free the record")

    assert result.status == "FAILED"
    assert result.error == "ThrottlingException"
    rerun = stack.run(execution_input)
    assert rerun.status == "SUCCEEDED"
    assert "Run the business steps" in rerun.states_entered


def test_a_save_and_a_release_that_keep_failing_leave_a_lease_that_expires() -> None:
    with OfflineStack({"LockLeaseSeconds": 1}, environment=QUIET) as stack:
        execution_input = {"orderId": "unlucky", "forceFailure": False}
        key = compute_idempotency_key(execution_input)
        with failing_dynamodb("update_item", "ThrottlingException", times=100), failing_dynamodb(
            "delete_item", "InternalServerError", times=100
        ):
            result = stack.run(execution_input)
            deliveries = stack.events.wait_until_delivered()
        held = stack.get_record(key)
        time.sleep(2.1)  # DynamoDB's clock is real: let the 1-second lease expire
        rerun = stack.run(execution_input)

    assert result.status == "FAILED"
    assert [delivery.errored for delivery in deliveries] == [True]  # the release failed too
    assert held is not None
    assert (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", result.execution_arn)
    assert rerun.status == "SUCCEEDED"
    assert "Run the business steps" in rerun.states_entered


def test_a_result_over_the_payload_limit_fails_the_execution_and_the_record_is_released(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)

    def huge_result(handler: Any, event: Any, context: Any) -> Any:
        return {"blob": "x" * 70_000}  # x4 steps: over Step Functions' 256 KiB payload limit

    with stack.lambdas.intercept("ExampleStepFunction", huge_result):
        result = stack.run(execution_input)
        # States.DataLimitExceeded cannot be caught; the FAILED event's release frees the key.
        wait_until(lambda: stack.get_record(key) is None, message="the release of the oversized run's record")
    rerun = stack.run(execution_input)

    assert result.status == "FAILED"
    assert result.error == "States.DataLimitExceeded"
    assert rerun.status == "SUCCEEDED"
    assert "Run the business steps" in rerun.states_entered
