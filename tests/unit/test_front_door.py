"""The front door as a library call (the layer's ``front_door.result_or_start``) against moto's DynamoDB.

The Step Functions client is the test's own recorder: the library starts an execution only on a
miss, and asks for the client only then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import pytest

from idempotency import errors, front_door, record, store, vocabulary
from idempotency.key import DEFAULT_RULES, KeyRules, identify
from tests.unit.conftest import RECORDS_TABLE as TABLE

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Orders-IdempotentWorkflow"
NOW = 1_800_000_000


class RecordingStepFunctions:
    """Records the executions it is asked to start; answers as StartExecution does."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:run-{len(self.started)}"}


class Clients:
    """The recorder, and how many times the library asked for a Step Functions client."""

    def __init__(self) -> None:
        self.sfn = RecordingStepFunctions()
        self.asked = 0

    def stepfunctions(self) -> SFNClient:
        self.asked += 1
        return as_step_functions(self.sfn)


def as_step_functions(fake: object) -> SFNClient:
    """A fake that answers the calls the code under test makes, given where Step Functions' client is due."""
    return cast("SFNClient", fake)


def put_record(
    dynamodb: Any, key: str, status: str, ttl: int = NOW + 60, attributes: Mapping[str, str] | None = None
) -> None:
    item = {
        record.ID: {"S": key},
        record.STATUS: {"S": status},
        record.EXECUTION_ID: {"S": "owner"},
        record.TTL: {"N": str(ttl)},
    }
    item.update({name: {"S": value} for name, value in (attributes or {}).items()})
    dynamodb.put_item(TableName=TABLE, Item=item)


def config(**rules: str) -> Any:
    return front_door.FrontDoorConfig(MACHINE, KeyRules.from_parameters(**rules) if rules else DEFAULT_RULES)


def records(dynamodb: Any) -> Any:
    """The layer's store of the test table (the front door only reads it)."""
    return store.RecordStore(dynamodb, TABLE, record_ttl_seconds=1_000, lease_seconds=100)


def test_a_stored_result_is_returned_without_asking_for_a_step_functions_client(dynamodb: Any) -> None:
    execution_input = {"orderId": "o-1"}
    key = identify(execution_input, "Orders-IdempotentWorkflow").key
    put_record(dynamodb, key, vocabulary.Status.SUCCESS, attributes={record.RESULT: json.dumps({"done": True})})
    clients = Clients()

    answer = front_door.result_or_start(execution_input, config(), records(dynamodb), clients.stepfunctions, NOW)

    assert answer.as_output() == {"outcome": "COMPLETED", "key": key, "result": {"done": True}}
    assert clients.asked == 0


@pytest.mark.parametrize(
    ("status", "ttl"),
    [(None, None), ("FAILED", NOW + 60), ("IN_PROGRESS", NOW + 60), ("SUCCESS", NOW - 1)],
    ids=["absent", "failed", "in progress", "expired success"],
)
def test_anything_but_a_live_stored_result_starts_one_execution_with_the_input_unnamed(
    dynamodb: Any, status: str | None, ttl: int | None
) -> None:
    execution_input = {"orderId": "o-2", "note": "ünïcode"}
    key = identify(execution_input, "Orders-IdempotentWorkflow").key
    if status is not None:
        put_record(dynamodb, key, status, ttl=ttl or NOW, attributes={record.RESULT: "{}"})
    clients = Clients()

    answer = front_door.result_or_start(execution_input, config(), records(dynamodb), clients.stepfunctions, NOW)

    assert answer.as_output() == {
        "outcome": "STARTED",
        "key": key,
        "executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:run-1",
    }
    # No name: Step Functions names it, so no 90-day name rule can refuse a rerun.
    assert clients.sfn.started == [
        {"stateMachineArn": MACHINE, "input": json.dumps(execution_input, ensure_ascii=False)}
    ]


def test_a_record_of_another_payload_is_refused_before_anything_starts(dynamodb: Any) -> None:
    rules = {"key_expression": "orderId", "validation_expression": "@"}
    stored = identify({"orderId": "o-3", "amount": 1}, "Orders-IdempotentWorkflow", config(**rules).key_rules)
    assert stored.payload_hash is not None
    put_record(
        dynamodb,
        stored.key,
        vocabulary.Status.SUCCESS,
        attributes={record.RESULT: "{}", record.PAYLOAD_HASH: stored.payload_hash},
    )
    clients = Clients()

    with pytest.raises(errors.IdempotencyPayloadMismatchError):
        front_door.result_or_start(
            {"orderId": "o-3", "amount": 2},
            config(**rules),
            records(dynamodb),
            clients.stepfunctions,
            NOW,
        )

    assert clients.asked == 0


@pytest.mark.parametrize(
    ("execution_input", "error"),
    [
        ("not an object", "IdempotencyInputNotObjectError"),
        ({"idempotencyKeyJmespath": "nothing.here"}, "IdempotencyKeyEmptyError"),
        ({"idempotencyKeyJmespath": "[?"}, "IdempotencyKeyExpressionError"),
        ({"x": float("nan")}, "IdempotencyInputNotJsonSafeError"),
    ],
)
def test_bad_input_gets_the_envelopes_named_error_and_starts_nothing(
    dynamodb: Any, execution_input: Any, error: str
) -> None:
    clients = Clients()

    with pytest.raises(errors.IdempotencyError) as raised:
        front_door.result_or_start(execution_input, config(), records(dynamodb), clients.stepfunctions, NOW)

    assert type(raised.value).__name__ == error
    assert clients.asked == 0
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


def test_a_record_in_no_known_state_is_a_named_error(dynamodb: Any) -> None:
    execution_input = {"orderId": "o-4"}
    put_record(dynamodb, identify(execution_input, "Orders-IdempotentWorkflow").key, "HALF_DONE")

    with pytest.raises(errors.IdempotencyRecordStateError):
        front_door.result_or_start(execution_input, config(), records(dynamodb), Clients().stepfunctions, NOW)
