"""What a key means, chosen by the deployment: scope, key expression, override, payload validation.

Each test deploys the template with the parameters it is about (``docs/keys.md``) and reads the
records by the id the docs tell a user to compute: ``<scope>#<sha256 of the selected value>``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from emulator import OfflineStack
from tests.integration.support import (
    QUIET,
    business_step_calls,
    held_owner,
    start_registered_waiter,
    wait_until,
)

pytestmark = pytest.mark.offline_only(reason="deploys the emulator with parameter overrides and counts Lambda calls")

MISMATCH = "IdempotencyPayloadMismatchError"


def sha256_of(canonical: str) -> str:
    """The key of a value whose canonical JSON is ``canonical`` (written out by hand in each test)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def scope_of(stack: OfflineStack, state_machine: str = "IdempotentWorkflow") -> str:
    return stack.physical_id(state_machine).rsplit(":", 1)[-1]


def cause_message(cause: str | None) -> str:
    return str(json.loads(cause or "{}").get("errorMessage", ""))


@pytest.fixture(scope="module")
def validating() -> Any:
    """Payload validation turned on for the whole input (it is off by default), the example steps never failing at
    random."""
    with OfflineStack(
        {"PayloadValidationJmespath": "@", "FailureProbability": 0, "LongestCallSeconds": 2}, environment=QUIET
    ) as stack:
        yield stack


def test_the_deployments_key_expression_keys_the_record_and_ignores_what_it_leaves_out() -> None:
    parameters = {"IdempotencyKeyJmespath": "order.id", "PayloadValidationJmespath": "", "FailureProbability": 0}
    with OfflineStack(parameters, environment=QUIET) as stack:
        first = stack.run({"order": {"id": "A-1", "note": "first"}})
        calls = business_step_calls(stack)
        again = stack.run({"order": {"note": "second", "id": "A-1"}, "requestedAt": "later"})
        record = stack.get_record(f"{scope_of(stack)}#{sha256_of(json.dumps('A-1'))}")

    assert first.status == again.status == "SUCCEEDED"
    assert again.output == first.output
    assert business_step_calls(stack) == calls
    assert record is not None and record["executionid"] == first.execution_arn
    assert "payloadhash" not in record  # validation is off


def test_an_input_may_override_the_deployments_expression_unless_the_deployment_refuses() -> None:
    override = {"order": {"id": "B-1", "lines": 3}, "idempotencyKeyJmespath": "order.lines", "forceFailure": False}
    with OfflineStack({"IdempotencyKeyJmespath": "order.id"}, environment=QUIET) as allowed:
        allowed_run = allowed.run(override)
        by_override = allowed.get_record(f"{scope_of(allowed)}#{sha256_of('3')}")
    with OfflineStack(
        {"IdempotencyKeyJmespath": "order.id", "AllowKeyOverride": "false"}, environment=QUIET
    ) as refusing:
        refused = refusing.run(override)
        left_behind = refusing.records()

    assert allowed_run.status == "SUCCEEDED"
    assert by_override is not None and by_override["executionid"] == allowed_run.execution_arn
    assert (refused.status, refused.error) == ("FAILED", "IdempotencyKeyOverrideNotAllowedError")
    assert "AllowKeyOverride" in cause_message(refused.cause)
    assert left_behind == []  # bad input: no record, no lock


def test_two_workflows_sharing_the_table_never_share_a_record(validating: OfflineStack) -> None:
    stack = validating
    # A second workflow on the same functions and table: the envelope's definition under another
    # state machine name (as a second envelope given the same table would be).
    described = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)
    other_name = f"{scope_of(stack)}-Other"
    other_arn = stack.sfn.create_state_machine(
        name=other_name, definition=described["definition"], roleArn=described["roleArn"]
    )["stateMachineArn"]
    execution_input = {"orderId": "shared-table", "forceFailure": False}
    key = sha256_of(json.dumps(execution_input, sort_keys=True, separators=(",", ":")))

    calls = business_step_calls(stack)
    envelope = stack.run(execution_input)
    between = business_step_calls(stack)
    other = stack.wait_for(
        stack.sfn.start_execution(stateMachineArn=other_arn, input=json.dumps(execution_input))["executionArn"]
    )
    records = {name: stack.get_record(f"{name}#{key}") for name in (scope_of(stack), other_name)}

    assert envelope.status == other.status == "SUCCEEDED"
    # Each ran its own steps: no hit on the other's record.
    assert between > calls and business_step_calls(stack) > between
    assert {name: (record or {}).get("executionid") for name, record in records.items()} == {
        scope_of(stack): envelope.execution_arn,
        other_name: other.execution_arn,
    }


def test_a_deployments_scope_names_every_record() -> None:
    with OfflineStack({"IdempotencyScope": "orders-v2", "FailureProbability": 0}, environment=QUIET) as stack:
        result = stack.run({"orderId": "scoped"})
        (record,) = [item for item in stack.records() if "#waiter#" not in item["id"]]

    assert result.status == "SUCCEEDED"
    canonical = '{"orderId":"scoped"}'
    assert record["id"] == f"orders-v2#{sha256_of(canonical)}"


def test_a_repeat_with_another_payload_is_refused_for_a_completed_record(validating: OfflineStack, unique: str) -> None:
    stack = validating
    first = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "amount": 10}
    done = stack.run(first)
    record = stack.get_record(f"{scope_of(stack)}#{sha256_of(json.dumps(unique))}")
    calls = business_step_calls(stack)

    other = stack.run({**first, "amount": "secret-amount-value"})

    assert done.status == "SUCCEEDED"
    assert (other.status, other.error) == ("FAILED", MISMATCH)
    assert record is not None and record["id"] in cause_message(other.cause)
    assert "secret-amount-value" not in cause_message(other.cause)  # names the key, never the payload
    assert stack.get_record(record["id"]) == record  # changed nothing
    assert business_step_calls(stack) == calls


def test_a_repeat_with_another_payload_is_refused_while_the_record_is_in_progress_and_as_a_waiter(
    validating: OfflineStack, unique: str
) -> None:
    stack = validating
    owner_input = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "amount": 10}
    with held_owner(stack, owner_input) as (owner_arn, gate):
        in_progress = stack.run({**owner_input, "amount": 11})
        waiter_arn = start_registered_waiter(stack, owner_input)
        held = stack.get_record(f"{scope_of(stack)}#{sha256_of(json.dumps(unique))}")
        gate.open()
        owner, waiter = stack.wait_for(owner_arn), stack.wait_for(waiter_arn)

    assert (in_progress.status, in_progress.error) == ("FAILED", MISMATCH)
    assert held is not None and (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", owner_arn)
    assert owner.status == waiter.status == "SUCCEEDED"
    assert waiter.output == owner.output  # a waiter with the same payload is answered as usual


def test_a_waiter_whose_payload_no_longer_matches_is_refused_when_it_looks_again(
    validating: OfflineStack, unique: str
) -> None:
    # The waiter's payload matched the record when it began to wait; the record's hash is then
    # changed (as if another payload had taken the key meanwhile) and the wake-up is lost (its slot
    # is gone), so the waiter looks again by itself: that look compares the payloads again.
    stack = validating
    key = f"{scope_of(stack)}#{sha256_of(json.dumps(unique))}"
    owner_input = {"orderId": unique, "idempotencyKeyJmespath": "orderId", "amount": 10}
    with held_owner(stack, owner_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, owner_input)
        wait_until(lambda: any("#waiter#" in item["id"] for item in stack.records()), message="the waiter's slot")
        for item in stack.records():
            if item["id"].startswith(f"{key}#waiter#"):
                stack.dynamodb.delete_item(TableName=stack.table_name, Key={"id": {"S": item["id"]}})
        stack.dynamodb.update_item(
            TableName=stack.table_name,
            Key={"id": {"S": key}},
            UpdateExpression="SET payloadhash = :other",
            ExpressionAttributeValues={":other": {"S": sha256_of("another payload")}},
        )
        gate.open()
        owner, waiter = stack.wait_for(owner_arn), stack.wait_for(waiter_arn)

    assert owner.status == "SUCCEEDED"
    assert (waiter.status, waiter.error) == ("FAILED", MISMATCH)
    assert "Run the business steps" not in waiter.states_entered


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        ({"IdempotencyKeyJmespath": "order["}, "IdempotencyKeyJmespath"),
        ({"PayloadValidationJmespath": "length("}, "PayloadValidationJmespath"),
        ({"IdempotencyKeyJmespath": "unknown_function(@)"}, "IdempotencyKeyJmespath"),
        ({"PayloadValidationJmespath": "items[::0]"}, "a slice's step cannot be 0"),
        ({"IdempotencyKeyJmespath": "(" * 150 + "orderId" + ")" * 150}, "at most 100 are accepted"),
    ],
    ids=[
        "key expression syntax",
        "validation expression syntax",
        "unknown function",
        "never evaluates",
        "nested too deep",
    ],
)
def test_an_invalid_expression_in_a_parameter_is_refused_when_the_functions_start(
    parameters: dict[str, str], words: str
) -> None:
    with pytest.raises(Exception) as refused:
        OfflineStack(parameters, environment=QUIET).__enter__()

    assert type(refused.value).__name__ == "IdempotencyConfigurationError"
    assert words in str(refused.value)
