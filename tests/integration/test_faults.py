"""Transient DynamoDB faults are retried under the error names the integrations really report."""

from __future__ import annotations

import pytest

from emulator import OfflineStack
from tests.integration.support import compute_idempotency_key, failing_dynamodb

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
    assert _task_failures(result.history) == [f"DynamoDB.{error_code}"] * 2
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


def test_taking_the_record_is_retried_by_the_sdk_on_throttling(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with failing_dynamodb("put_item", "ProvisionedThroughputExceededException", times=2) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert stack.lambdas.invocations("AcquireLockFunction") >= 1
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_a_save_that_keeps_failing_leaves_a_leased_record_for_a_later_execution(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with failing_dynamodb("update_item", "ThrottlingException", times=100):
        result = stack.run(execution_input)

    assert result.status == "FAILED"
    assert result.error == "DynamoDB.ThrottlingException"
    record = stack.get_record(compute_idempotency_key(execution_input))
    # Still IN_PROGRESS under a lease: once the lease expires the next execution takes it over.
    assert record is not None
    assert record["executionstatus"] == "IN_PROGRESS"
    assert record["executionid"] == result.execution_arn
    assert record["leaseexpiry"] > 0
