"""The front door (``FrontDoorFunction``): a repeat answered by one read, anything else starts the envelope.

It is invoked as a caller would invoke it (Lambda ``Invoke`` with the execution input), on a stack
that turns payload validation on (``PayloadValidationJmespath=@``), so that a record of another
payload exists to be refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from emulator import OfflineStack
from idempotency import errors
from tests.integration.support import QUIET, held_owner, wait_until

pytestmark = pytest.mark.offline_only(reason="counts executions and Lambda calls, and holds steps")

FRONT_DOOR = "FrontDoorFunction"
CONTRACT_ERRORS = {name for name in dir(errors) if name.startswith("Idempotency") and name.endswith("Error")}


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    parameters = {"LongestCallSeconds": 2, "PayloadValidationJmespath": "@", "FailureProbability": 0}
    with OfflineStack(parameters, environment=QUIET) as deployed:
        yield deployed


def call(stack: OfflineStack, execution_input: Any) -> dict[str, Any]:
    """Invoke the front door as a caller would; its answer, or ``{"errorType": ...}`` when it failed."""
    response = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName=stack.physical_id(FRONT_DOOR), Payload=json.dumps(execution_input).encode()
    )
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    assert ("FunctionError" in response) == ("errorType" in answer), answer
    return answer


def executions(stack: OfflineStack) -> list[str]:
    pages = stack.sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn)
    return [execution["executionArn"] for page in pages for execution in page["executions"]]


def test_a_miss_starts_one_envelope_execution_that_returns_the_result_and_a_repeat_is_answered_by_one_read(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    before = executions(stack)

    started = call(stack, execution_input)

    assert started["outcome"] == "STARTED"
    assert set(executions(stack)) - set(before) == {started["executionArn"]}
    run = stack.wait_for(started["executionArn"])
    assert run.status == "SUCCEEDED", run.cause
    calls = stack.lambdas.invocations("AcquireLockFunction")

    repeat = call(stack, execution_input)

    assert repeat == {"outcome": "COMPLETED", "key": started["key"], "result": run.output}
    assert set(executions(stack)) - set(before) == {started["executionArn"]}, "a hit started an execution"
    assert stack.lambdas.invocations("AcquireLockFunction") == calls
    record = stack.get_record(started["key"])
    assert record is not None and record["executionid"] == started["executionArn"]


def test_the_front_door_keys_an_input_as_the_take_does(stack: OfflineStack, unique: str) -> None:
    # Another field, a key expression chosen by the input, keys in another order: the same record.
    execution_input = {"b": {"y": 1, "x": 2}, "a": unique, "idempotencyKeyJmespath": "a", "forceFailure": False}
    started = call(stack, execution_input)
    assert stack.wait_for(started["executionArn"]).status == "SUCCEEDED"

    record = stack.get_record(started["key"])

    assert record is not None and record["executionid"] == started["executionArn"]
    assert (
        call(stack, {"forceFailure": False, "a": unique, "idempotencyKeyJmespath": "a", "b": {"x": 2, "y": 1}})[
            "outcome"
        ]
        == "COMPLETED"
    )


def test_a_failed_record_is_never_returned_the_rerun_is_started(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": True}
    first = call(stack, execution_input)
    assert stack.wait_for(first["executionArn"]).status == "FAILED"
    record = stack.get_record(first["key"])
    assert record is not None and record["executionstatus"] == "FAILED"

    again = call(stack, execution_input)

    assert again["outcome"] == "STARTED" and again["executionArn"] != first["executionArn"]
    assert stack.wait_for(again["executionArn"]).status == "FAILED"  # the rerun ran (and failed as asked)


def test_an_expired_record_is_never_returned(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    first = call(stack, execution_input)
    assert stack.wait_for(first["executionArn"]).status == "SUCCEEDED"
    record_id = stack.record_id(first["key"])
    # Its ttl passed: DynamoDB has not deleted it yet, but it no longer counts.
    stack.dynamodb.update_item(
        TableName=stack.table_name,
        Key={"id": {"S": record_id}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    again = call(stack, execution_input)

    assert again["outcome"] == "STARTED"
    assert stack.wait_for(again["executionArn"]).status == "SUCCEEDED"


def test_a_record_of_another_payload_is_refused_with_the_envelopes_error_and_nothing_starts(
    stack: OfflineStack, unique: str
) -> None:
    first = call(stack, {"orderId": unique, "forceFailure": False, "idempotencyKeyJmespath": "orderId", "amount": 1})
    assert stack.wait_for(first["executionArn"]).status == "SUCCEEDED"
    before = executions(stack)

    refused = call(stack, {"orderId": unique, "forceFailure": False, "idempotencyKeyJmespath": "orderId", "amount": 2})

    assert refused["errorType"] == "IdempotencyPayloadMismatchError"
    assert executions(stack) == before


@pytest.mark.parametrize(
    ("execution_input", "error"),
    [
        ([1, 2], "IdempotencyInputNotObjectError"),
        ({"idempotencyKeyJmespath": "missing"}, "IdempotencyKeyEmptyError"),
        ({"idempotencyKeyJmespath": "[?"}, "IdempotencyKeyExpressionError"),
        ({"idempotencyKeyJmespath": 7}, "IdempotencyKeyExpressionError"),
    ],
)
def test_bad_input_gets_the_envelopes_named_error_and_starts_nothing_and_writes_nothing(
    stack: OfflineStack, execution_input: Any, error: str
) -> None:
    stack.events.wait_until_delivered()  # no release of an earlier test's execution still writing
    before, records = executions(stack), stack.records()

    answer = call(stack, execution_input)

    assert answer["errorType"] == error
    assert answer["errorType"] in CONTRACT_ERRORS
    assert executions(stack) == before
    assert stack.records() == records


def test_a_call_racing_an_owners_save_returns_the_result_or_an_execution_that_returns_it(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with held_owner(stack, execution_input) as (owner_arn, gate):
        during = call(stack, execution_input)
        assert during["outcome"] == "STARTED", "the record is IN_PROGRESS: the front door may not answer yet"
        racing: list[dict[str, Any]] = []
        racer = threading.Thread(target=lambda: racing.append(call(stack, execution_input)))
        racer.start()
        gate.open()
        racer.join(120)
    owner = stack.wait_for(owner_arn)
    assert owner.status == "SUCCEEDED"

    waiter = stack.wait_for(during["executionArn"])

    assert waiter.status == "SUCCEEDED" and waiter.output == owner.output
    (raced,) = racing
    if raced["outcome"] == "COMPLETED":
        assert raced["result"] == owner.output
    else:
        assert stack.wait_for(raced["executionArn"]).output == owner.output
    wait_until(
        lambda: call(stack, execution_input)["outcome"] == "COMPLETED", message="the saved result to be answered"
    )
