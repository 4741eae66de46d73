"""The record's conditional writes (layers/idempotency/idempotency/record.py) against moto's DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.adapters import load_module
from emulator.template import PROJECT_ROOT

LAYER = PROJECT_ROOT / "layers" / "idempotency"
record: ModuleType = load_module(LAYER, "idempotency.record")

TABLE = "records"
NOW = 1_800_000_000
OWNER = "arn:aws:states:us-east-1:123456789012:execution:wf:owner"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:wf:other"
RUN = "2026-11-23T00:00:00.000Z"  # the entry time of the execution's first state


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _take(client: Any, execution_id: str = OWNER, now: int = NOW, run_id: str = RUN, **kwargs: Any) -> Any:
    return record.acquire_lock(
        client, TABLE, "k", record.Owner(execution_id, "2026-11-23T00:00:00Z", run_id), now=now,
        record_ttl_seconds=100, lease_seconds=10, **kwargs,
    )


def _item(client: Any) -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"id": {"S": "k"}}, ConsistentRead=True).get("Item")


def test_an_absent_record_is_taken_with_ttl_lease_and_no_waiters(dynamodb: Any) -> None:
    assert _take(dynamodb).outcome == record.ACQUIRED

    item = _item(dynamodb)
    assert item is not None
    assert item[record.STATUS] == {"S": record.IN_PROGRESS}
    assert item[record.EXECUTION_ID] == {"S": OWNER}
    assert item[record.TTL] == {"N": str(NOW + 100)}
    assert item[record.LEASE_EXPIRY] == {"N": str(NOW + 10)}
    assert item[record.WAITERS] == {"M": {}}


def test_a_held_record_is_busy_for_others_and_taken_again_by_its_owner(dynamodb: Any) -> None:
    _take(dynamodb)

    busy = _take(dynamodb, OTHER)
    retried = _take(dynamodb, OWNER)

    assert (busy.outcome, busy.held_by) == (record.BUSY, OWNER)
    assert busy.as_output() == {"outcome": record.BUSY, "key": "k", "heldBy": OWNER}
    assert retried.outcome == record.ACQUIRED  # a retried invocation of the same owner
    # Another run of the same (Express, at-least-once) execution is not the owner.
    assert _take(dynamodb, OWNER, run_id="2026-11-23T00:00:01.000Z").outcome == record.BUSY


def test_an_expired_lease_or_ttl_lets_another_execution_take_over(dynamodb: Any) -> None:
    _take(dynamodb)

    assert _take(dynamodb, OTHER, now=NOW + 11).outcome == record.ACQUIRED  # lease passed
    assert _take(dynamodb, OWNER, now=NOW + 11 + 101).outcome == record.ACQUIRED  # ttl passed


def test_a_saved_record_answers_with_its_result_and_a_failed_one_is_taken_again(dynamodb: Any) -> None:
    _take(dynamodb)
    record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result={"b": [1, 2], "a": "é"})

    hit = _take(dynamodb, OTHER)
    assert (hit.outcome, hit.result) == (record.COMPLETED, {"b": [1, 2], "a": "é"})

    dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": "k"}})
    _take(dynamodb)
    record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, error="Boom", cause="why")
    assert _take(dynamodb, OTHER).outcome == record.ACQUIRED


def test_a_waiter_that_must_report_a_failure_gets_its_error_instead_of_the_record(dynamodb: Any) -> None:
    _take(dynamodb)
    record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, error="Boom", cause="why")

    failed = _take(dynamodb, OTHER, may_take_failed=False)

    assert failed.as_output() == {"outcome": record.FAILED_OUTCOME, "key": "k", "error": "Boom", "cause": "why"}
    assert _item(dynamodb)[record.STATUS] == {"S": record.FAILED}  # type: ignore[index]


def test_waiters_register_once_each_and_are_returned_by_the_save(dynamodb: Any) -> None:
    _take(dynamodb)

    assert record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter-1", "token-a", NOW)
    assert record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter-2", "token-b", NOW)
    assert record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter-1", "token-c", NOW)  # a new wait
    saved = record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result=1)

    assert saved.status == record.SUCCESS
    assert saved.waiters == {"waiter-1": "token-c", "waiter-2": "token-b"}


@pytest.mark.parametrize(
    ("held_by", "now", "prepare"),
    [
        (OTHER, NOW, None),  # the record has another owner
        (OWNER, NOW + 101, None),  # the record expired
        (OWNER, NOW, "save"),  # the record was saved meanwhile
        (OWNER, NOW, "delete"),  # the record vanished
    ],
    ids=["other owner", "expired", "saved", "vanished"],
)
def test_a_waiter_is_told_to_look_again_when_the_record_changed(dynamodb: Any, held_by: str, now: int, prepare: str | None) -> None:
    _take(dynamodb)
    if prepare == "save":
        record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result=1)
    if prepare == "delete":
        dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": "k"}})
    before = _item(dynamodb)

    assert record.register_waiter(dynamodb, TABLE, "k", held_by, "waiter", "token", now) is False
    assert _item(dynamodb) == before


def test_a_save_by_an_execution_that_lost_the_record_changes_nothing(dynamodb: Any) -> None:
    _take(dynamodb)
    _take(dynamodb, OTHER, now=NOW + 11)  # took over after the lease
    before = _item(dynamodb)

    with pytest.raises(record.IdempotencyRecordLostError, match="owned by"):
        record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result={"late": True})
    assert _item(dynamodb) == before


def test_a_save_never_creates_a_record(dynamodb: Any) -> None:
    with pytest.raises(record.IdempotencyRecordLostError, match="absent"):
        record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result=1)

    assert _item(dynamodb) is None


def test_saving_the_same_outcome_again_is_harmless_and_returns_the_waiters_again(dynamodb: Any) -> None:
    _take(dynamodb)
    record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter", "token", NOW)
    first = record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result={"a": 1})

    again = record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, result={"a": 1})

    assert again == first
    assert json.loads(_item(dynamodb)[record.RESULT]["S"]) == {"a": 1}  # type: ignore[index]
    with pytest.raises(record.IdempotencyRecordLostError):  # but not a different outcome
        record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, error="Late", cause="")


def test_a_release_deletes_only_the_record_the_execution_still_holds(dynamodb: Any) -> None:
    _take(dynamodb)
    record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter", "token", NOW)

    assert record.release_record(dynamodb, TABLE, "k", OTHER) is None
    released = record.release_record(dynamodb, TABLE, "k", OWNER)

    assert released is not None and released.waiters == {"waiter": "token"}
    assert _item(dynamodb) is None
    assert record.release_record(dynamodb, TABLE, "k", OWNER) is None  # a repeated event


def test_a_release_leaves_saved_records_alone(dynamodb: Any) -> None:
    _take(dynamodb)
    record.save_outcome(dynamodb, TABLE, "k", OWNER, RUN, error="Boom", cause="why")

    assert record.release_record(dynamodb, TABLE, "k", OWNER) is None
    assert _item(dynamodb)[record.STATUS] == {"S": record.FAILED}  # type: ignore[index]


def test_a_record_in_an_unknown_state_is_a_named_error(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={"id": {"S": "k"}, record.STATUS: {"S": "PAUSED"}, record.TTL: {"N": str(NOW + 100)}},
    )

    with pytest.raises(record.IdempotencyRecordStateError, match="PAUSED"):
        _take(dynamodb, OTHER)


def test_a_waiter_registers_on_a_record_written_without_the_waiters_map(dynamodb: Any) -> None:
    # As an earlier version of the envelope wrote IN_PROGRESS records.
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": "k"},
            record.STATUS: {"S": record.IN_PROGRESS},
            record.EXECUTION_ID: {"S": OWNER},
            record.TTL: {"N": str(NOW + 100)},
            record.LEASE_EXPIRY: {"N": str(NOW + 10)},
        },
    )

    assert record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter-1", "token-a", NOW)
    assert record.register_waiter(dynamodb, TABLE, "k", OWNER, "waiter-2", "token-b", NOW)
    assert _item(dynamodb)[record.WAITERS] == {"M": {"waiter-1": {"S": "token-a"}, "waiter-2": {"S": "token-b"}}}  # type: ignore[index]
