"""Only the owner of a record may save it, and a record that disappears is simply taken again."""

from __future__ import annotations

import pytest

from emulator import OfflineStack
from idempotency.key import compute_idempotency_key
from tests.integration.support import business_step_calls, held_owner, wait_until

pytestmark = pytest.mark.offline_only(reason="holds Lambda calls with interceptors")


def test_an_owner_that_lost_its_record_does_not_overwrite_the_new_owner(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (late_owner_arn, gate):
        # While the owner is mid-steps its record is taken over (as after an expired lease).
        stack.dynamodb.update_item(
            TableName=stack.table_name,
            Key={"id": {"S": stack.record_id(key)}},
            UpdateExpression="SET executionid = :other",
            ExpressionAttributeValues={":other": {"S": "arn:aws:states:us-east-1:123456789012:execution:x:new-owner"}},
        )
        gate.open()
        late_owner = stack.wait_for(late_owner_arn)

    assert late_owner.status == "FAILED"
    assert late_owner.error == "IdempotencyRecordLostError"
    record = stack.get_record(key)
    assert record is not None
    assert record["executionstatus"] == "IN_PROGRESS"
    assert record["executionid"].endswith(":new-owner")


def test_a_save_never_recreates_a_deleted_record(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (arn, gate):
        stack.dynamodb.delete_item(TableName=stack.table_name, Key={"id": {"S": stack.record_id(key)}})
        gate.open()
        result = stack.wait_for(arn)

    stack.events.wait_until_delivered()  # the failed execution's release has run
    record = stack.get_record(key)

    assert result.error == "IdempotencyRecordLostError"
    # The save created nothing. The release of the failed execution may hold the key for its calls'
    # bound (it cannot tell a take still in flight from none), never with a result.
    assert record is None or (
        record["executionstatus"] == "IN_PROGRESS" and record["executionid"] == arn and "executionresult" not in record
    )


def test_a_waiter_takes_a_record_that_vanished_while_it_waited(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        looks = stack.lambdas.invocations("AcquireLockFunction")
        waiter_arn = stack.start_execution(execution_input)
        wait_until(lambda: stack.lambdas.invocations("AcquireLockFunction") >= looks + 2, message="waiter polls")
        stack.dynamodb.delete_item(
            TableName=stack.table_name, Key={"id": {"S": stack.record_id(key)}}
        )  # e.g. TTL deletion
        wait_until(lambda: stack.get_record(key) is not None, message="waiter takes the record")
        gate.open()
        owner, waiter = stack.wait_for(owner_arn), stack.wait_for(waiter_arn)

    assert waiter.status == "SUCCEEDED", waiter.cause
    assert "Run the business steps" in waiter.states_entered
    assert owner.error == "IdempotencyRecordLostError"
    record = stack.get_record(key)
    assert record is not None and (record["executionstatus"], record["executionid"]) == ("SUCCESS", waiter_arn)


def test_different_inputs_never_wait_for_each_other(stack: OfflineStack, unique: str) -> None:
    with held_owner(stack, {"orderId": unique, "forceFailure": False}) as (held_arn, gate):
        calls = business_step_calls(stack)
        # The random step is held for every execution, so count the example steps instead.
        other_arn = stack.start_execution({"orderId": unique + "-other", "forceFailure": False})
        wait_until(lambda: business_step_calls(stack) >= calls + 4, message="the other input's steps")
        gate.open()
        held, other = stack.wait_for(held_arn), stack.wait_for(other_arn)

    assert held.status == other.status == "SUCCEEDED"
    assert "Wait for the other execution to finish" not in other.states_entered
