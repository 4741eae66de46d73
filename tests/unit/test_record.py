"""The record's reads and conditional writes (the layer's ``record.py``) against moto's DynamoDB.

Every test starts from the table the template creates (partition key ``id``) and drives the
record as the envelope's functions do: take, extend a live holder's lease, register waiters,
save, and end the ownership of an execution that stopped without saving.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from emulator.adapters import atomic_dynamodb_writes
from idempotency import decision, ending, errors, record, vocabulary, waiter_slots
from idempotency.store import RecordStore
from idempotency.take import HolderChecks, take_record
from tests.unit.conftest import RECORDS_TABLE as TABLE

NOW = 1_800_000_000
TTL_SECONDS = 1_000
LEASE = 100
KEY = "wf#" + hashlib.sha256(b'{"orderId":"1"}').hexdigest()
OWNER = "arn:aws:states:us-east-1:123456789012:execution:wf:owner"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:wf:other"
START = "2026-11-23T00:00:00.000Z"
RUN = "2026-11-23T00:00:00.123Z"  # the entry time of the execution's first state

Calls = list[tuple[str, dict[str, Any]]]


# What take_record is asked about the record's holder (take.HolderChecks), among a take's keywords.
HOLDER_CHECKS = ("liveness", "still_running", "resume", "child")


def _store(client: Any, record_ttl_seconds: int = TTL_SECONDS) -> Any:
    """The layer's store of the test table, through ``client``."""
    return RecordStore(client, TABLE, record_ttl_seconds, LEASE)


@pytest.fixture
def take(dynamodb: Any) -> Callable[..., Any]:
    """``take(execution_id, now=..., run_id=..., client=..., **keywords)``: one look at ``KEY``'s record.

    The keywords are ``take.HolderChecks``'s (``liveness``, ``still_running``, ``resume``, ``child``) and
    ``decision.TakeRequest``'s (``may_take_failed``, ``payload_hash``, ...).
    """

    def take(execution_id: str = OWNER, now: int = NOW, run_id: str = RUN, client: Any = None, **kwargs: Any) -> Any:
        checks = HolderChecks(**{name: kwargs.pop(name) for name in HOLDER_CHECKS if name in kwargs})
        request = decision.TakeRequest(KEY, record.Owner(execution_id, run_id, START), **kwargs)
        return take_record(_store(client or dynamodb), request, now, checks)

    return take


def _item(client: Any, key: str = KEY) -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


def _stored(client: Any, key: str = KEY) -> dict[str, Any]:
    """The item of ``key``, which the test expects to be there."""
    item = _item(client, key)
    assert item is not None, f"no item {key}"
    return item


def _all_items(client: Any) -> list[dict[str, Any]]:
    return client.scan(TableName=TABLE, ConsistentRead=True)["Items"]


def _put(client: Any, status: str, **attributes: Any) -> dict[str, Any]:
    """Write a record as another version, or another execution, left it (values given plainly: str -> S, int -> N)."""
    plain: dict[str, Any] = {
        record.STATUS: status,
        record.EXECUTION_ID: OWNER,
        record.RUN_ID: RUN,
        record.START_TIME: START,
        record.TTL: NOW + TTL_SECONDS,
        **attributes,
    }
    item = {"id": {"S": KEY}}
    for name, value in plain.items():
        if value is not None:
            item[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    client.put_item(TableName=TABLE, Item=item)
    return item


def _operations(calls: Calls) -> list[str]:
    return [name for name, _ in calls]


class RecordingLiveness:
    """A ``LivenessCheck`` that answers what it is told and remembers whom it was asked about."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[Any, int]] = []

    def __call__(self, holder: Any, now: int) -> Any:
        self.asked.append((holder, now))
        return self.answer


def _before_first(client: Any, operation: str, action: Callable[[], None]) -> None:
    """Run ``action`` just before ``client`` sends its first ``operation`` (another execution acting in between)."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    client.meta.events.register(f"before-call.dynamodb.{operation}", hook)


def _rival_client() -> Any:
    """A second client on the same moto table: what another Lambda invocation would use (its calls are not counted)."""
    return boto3.client("dynamodb", region_name="us-east-1")


# --------------------------------------------------------------------------- taking
def test_a_free_record_costs_one_consistent_read_and_one_conditional_put(
    take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    outcome = take()

    assert (outcome.outcome, outcome.key, outcome.taken_over) == (vocabulary.Outcome.ACQUIRED, KEY, False)
    assert _operations(dynamodb_calls) == ["GetItem", "PutItem"]
    assert dynamodb_calls[0][1]["ConsistentRead"] is True
    assert "ConditionExpression" in dynamodb_calls[1][1]
    assert _item(dynamodb) == {
        "id": {"S": KEY},
        record.STATUS: {"S": vocabulary.Status.IN_PROGRESS},
        record.EXECUTION_ID: {"S": OWNER},
        record.RUN_ID: {"S": RUN},
        record.START_TIME: {"S": START},
        record.TTL: {"N": str(NOW + TTL_SECONDS)},
        record.LEASE_EXPIRY: {"N": str(NOW + LEASE)},
        record.WAITERS: {"N": "0"},
    }


def test_the_take_stores_the_payload_hash_and_the_child_execution_it_is_given(take: Any, dynamodb: Any) -> None:
    child = "arn:aws:states:us-east-1:123456789012:execution:child:owner"

    take(payload_hash="hash-1", child_execution=child)

    item = _item(dynamodb)
    assert item is not None
    assert item[record.PAYLOAD_HASH] == {"S": "hash-1"}
    assert item[record.CHILD_EXECUTION] == {"S": child}


def test_a_hit_is_answered_by_one_consistent_read_and_no_write(take: Any, dynamodb: Any, dynamodb_calls: Calls) -> None:
    take()
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json='{"b":[1,2],"a":"é"}')
    dynamodb_calls.clear()

    hit = take(OTHER)

    assert (hit.outcome, hit.result) == (vocabulary.Outcome.COMPLETED, {"b": [1, 2], "a": "é"})
    assert hit.as_output() == {"outcome": vocabulary.Outcome.COMPLETED, "key": KEY}
    assert _operations(dynamodb_calls) == ["GetItem"]
    assert dynamodb_calls[0][1]["ConsistentRead"] is True


@pytest.mark.parametrize("status", ["SUCCESS", "IN_PROGRESS", "FAILED"])
def test_a_record_whose_ttl_has_passed_counts_as_absent(take: Any, dynamodb: Any, status: str) -> None:
    # DynamoDB's TTL deletion may come days late: the item is still there.
    _put(
        dynamodb,
        status,
        **{record.TTL: NOW - 1, record.RESULT: "1", record.LEASE_EXPIRY: NOW + LEASE},
    )

    outcome = take(OTHER)

    assert (outcome.outcome, outcome.taken_over) == (vocabulary.Outcome.ACQUIRED, False)
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.STATUS], item[record.EXECUTION_ID]) == (
        {"S": vocabulary.Status.IN_PROGRESS},
        {"S": OTHER},
    )
    assert record.RESULT not in item


def test_a_failed_record_is_taken_and_loses_its_failure(take: Any, dynamodb: Any) -> None:
    take()
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why"))

    outcome = take(OTHER)

    assert (outcome.outcome, outcome.taken_over) == (vocabulary.Outcome.ACQUIRED, False)
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.STATUS], item[record.EXECUTION_ID]) == (
        {"S": vocabulary.Status.IN_PROGRESS},
        {"S": OTHER},
    )
    assert record.ERROR not in item and record.CAUSE not in item


def test_a_failed_record_is_busy_while_the_failed_owners_calls_may_still_run(take: Any, dynamodb: Any) -> None:
    take()
    _store(dynamodb).save_outcome(
        KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why", quiet_until=NOW + 30)
    )

    early = take(OTHER, now=NOW + 30)
    late = take(OTHER, now=NOW + 31)

    assert (early.outcome, early.look_again_at) == (vocabulary.Outcome.BUSY, NOW + 31)
    assert late.outcome == vocabulary.Outcome.ACQUIRED


def test_a_waiter_that_must_report_a_failure_gets_the_owners_error_and_writes_nothing(
    take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take()
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why"))
    before = _item(dynamodb)
    dynamodb_calls.clear()

    failed = take(OTHER, may_take_failed=False)

    assert failed.as_output() == {
        "outcome": vocabulary.Outcome.FAILED,
        "key": KEY,
        "error": "Boom",
        "cause": "why",
    }
    assert _operations(dynamodb_calls) == ["GetItem"]
    assert _item(dynamodb) == before


def test_a_live_holders_record_is_busy_without_asking_step_functions_while_its_lease_runs(
    take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take()
    dynamodb_calls.clear()
    liveness = RecordingLiveness(record.Liveness(can_act=False))

    busy = take(OTHER, now=NOW + LEASE, liveness=liveness)  # the lease's last second

    assert (busy.outcome, busy.look_again_at) == (vocabulary.Outcome.BUSY, NOW + LEASE + 1)
    assert busy.as_output() == {"outcome": vocabulary.Outcome.BUSY, "key": KEY, "heldBy": OWNER, "heldByRun": RUN}
    assert liveness.asked == []
    assert _operations(dynamodb_calls) == ["GetItem"]


def test_an_expired_lease_of_a_holder_that_can_still_act_is_extended_not_taken(
    take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take(child_execution="arn:aws:states:us-east-1:123456789012:execution:child:owner")
    dynamodb_calls.clear()
    liveness = RecordingLiveness(record.Liveness(can_act=True))
    now = NOW + LEASE + 1

    busy = take(OTHER, now=now, liveness=liveness)

    assert (busy.outcome, busy.taken_over, busy.look_again_at) == (vocabulary.Outcome.BUSY, False, now + LEASE)
    ((holder, asked_at),) = liveness.asked
    assert (holder.execution_id, holder.run_id, holder.child_execution, asked_at) == (
        OWNER,
        RUN,
        "arn:aws:states:us-east-1:123456789012:execution:child:owner",
        now,
    )
    assert _operations(dynamodb_calls) == ["GetItem", "UpdateItem"]
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.EXECUTION_ID], item[record.LEASE_EXPIRY]) == ({"S": OWNER}, {"N": str(now + LEASE)})


def test_an_ended_holders_record_is_busy_until_its_calls_can_have_ended_then_taken_over(
    take: Any, dynamodb: Any
) -> None:
    take()
    free_at = NOW + LEASE + 50
    liveness = RecordingLiveness(record.Liveness(can_act=False, free_at=free_at))
    before = _item(dynamodb)

    waiting = take(OTHER, now=free_at - 1, liveness=liveness)
    assert (waiting.outcome, waiting.look_again_at) == (vocabulary.Outcome.BUSY, free_at + 1)
    assert _item(dynamodb) == before

    taken = take(OTHER, now=free_at, liveness=liveness)
    assert (taken.outcome, taken.taken_over) == (vocabulary.Outcome.ACQUIRED, True)
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.EXECUTION_ID], item[record.LEASE_EXPIRY]) == (
        {"S": OTHER},
        {"N": str(free_at + LEASE)},
    )


def test_without_a_liveness_check_an_expired_lease_alone_decides(take: Any, dynamodb: Any) -> None:
    # Express workflows: executions cannot be described.
    take()

    assert take(OTHER, now=NOW + LEASE).outcome == vocabulary.Outcome.BUSY
    taken = take(OTHER, now=NOW + LEASE + 1)

    assert (taken.outcome, taken.taken_over) == (vocabulary.Outcome.ACQUIRED, True)


def test_a_lease_is_extended_only_while_the_record_is_as_it_was_read(take: Any, dynamodb: Any) -> None:
    take()
    seen = _item(dynamodb)
    assert seen is not None

    store, seen_record = _store(dynamodb), record.parse_record(seen)
    assert store.extend_lease(seen_record, NOW + 500).landed
    changed = store.extend_lease(seen_record, NOW + 900)  # the lease it read is gone

    assert not changed.landed and changed.record.lease_expiry == NOW + 500
    assert _stored(dynamodb)[record.LEASE_EXPIRY] == {"N": str(NOW + 500)}


@pytest.mark.parametrize("rival_saves", [False, True], ids=["rival holds it", "rival saved it"])
def test_a_record_that_changed_between_the_read_and_the_put_is_read_from_the_refusal_not_overwritten(
    take: Any, dynamodb: Any, dynamodb_calls: Calls, rival_saves: bool
) -> None:
    rival = _rival_client()

    def another_execution_takes_it() -> None:
        assert take(OTHER, client=rival).outcome == vocabulary.Outcome.ACQUIRED
        if rival_saves:
            _store(rival).save_outcome(KEY, record.Owner(OTHER, RUN), result_json='{"by":"rival"}')

    _before_first(dynamodb, "PutItem", another_execution_takes_it)

    outcome = take(OWNER)

    if rival_saves:
        assert (outcome.outcome, outcome.result) == (vocabulary.Outcome.COMPLETED, {"by": "rival"})
    else:
        assert (outcome.outcome, outcome.holder.execution_id) == (vocabulary.Outcome.BUSY, OTHER)
    assert _operations(dynamodb_calls) == ["GetItem", "PutItem"]  # no second read: the refusal carried the record
    item = _item(dynamodb)
    assert item is not None and item[record.EXECUTION_ID] == {"S": OTHER}


def test_a_retried_take_by_the_same_owner_run_is_acquired_again(take: Any, dynamodb: Any) -> None:
    take()

    retried = take()  # a retried invocation whose first attempt took the record but lost the reply
    another_run = take(run_id="2026-11-23T00:00:09.000Z")  # the same Express execution run again

    assert (retried.outcome, retried.taken_over) == (vocabulary.Outcome.ACQUIRED, False)
    assert another_run.outcome == vocabulary.Outcome.BUSY
    assert _stored(dynamodb)[record.RUN_ID] == {"S": RUN}


@pytest.mark.parametrize("status", ["SUCCESS", "IN_PROGRESS"])
def test_a_repeat_with_another_payload_fails_with_a_named_error_and_changes_nothing(
    take: Any, dynamodb: Any, status: str
) -> None:
    take(payload_hash="hash-of-the-first")
    if status == "SUCCESS":
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json="1")
    before = _item(dynamodb)

    with pytest.raises(errors.IdempotencyPayloadMismatchError) as mismatch:
        take(OTHER, payload_hash="hash-of-another")

    assert KEY in str(mismatch.value)
    assert _item(dynamodb) == before


def test_a_payload_hash_is_not_compared_with_a_failed_record(take: Any, dynamodb: Any) -> None:
    take(payload_hash="hash-of-the-first")
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why"))

    outcome = take(OTHER, payload_hash="hash-of-another")

    assert outcome.outcome == vocabulary.Outcome.ACQUIRED
    assert _stored(dynamodb)[record.PAYLOAD_HASH] == {"S": "hash-of-another"}


# --------------------------------------------------------------------------- a child that failed on its own
CHILD_OF_OWNER = "arn:aws:states:us-east-1:123456789012:execution:child:owner"
CHILD_OF_OTHER = "arn:aws:states:us-east-1:123456789012:execution:child:other"
# Step Functions answers about the records' holder: it ended, and nothing it started still runs.
ENDED = record.Liveness(can_act=False)


class RecordingChildCheck:
    """A ``take.ChildCheck`` that answers what it is told and remembers what it was asked."""

    def __init__(self, answer: record.ChildState) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def __call__(self, child_execution: str, asking_execution: str) -> record.ChildState:
        self.asked.append((child_execution, asking_execution))
        return self.answer


def _child_failed(take: Any, dynamodb: Any, payload_hash: str | None = None) -> None:
    """OWNER took the record for its child, and the child failed: the record is FAILED with that child."""
    take(child_execution=CHILD_OF_OWNER, payload_hash=payload_hash)
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("StepFailed", "why"))


def test_the_record_of_a_failed_child_that_may_run_again_is_taken_with_that_child(take: Any, dynamodb: Any) -> None:
    _child_failed(take, dynamodb)
    child = RecordingChildCheck(record.ChildState(may_run_again=True, started_by=OWNER, redrive_count=1))

    outcome = take(OTHER, child_execution=CHILD_OF_OTHER, liveness=RecordingLiveness(ENDED), child=child)

    assert outcome.outcome == vocabulary.Outcome.ACQUIRED
    assert outcome.resumed_child == decision.ChildRun(CHILD_OF_OWNER, OWNER, redrive_count=1)
    assert child.asked == [(CHILD_OF_OWNER, OTHER)]
    item = _stored(dynamodb)
    assert (item[record.STATUS], item[record.EXECUTION_ID], item[record.CHILD_EXECUTION]) == (
        {"S": vocabulary.Status.IN_PROGRESS},
        {"S": OTHER},
        {"S": CHILD_OF_OWNER},
    )


def test_the_record_of_a_failed_child_that_can_never_run_again_is_taken_with_a_new_child(
    take: Any, dynamodb: Any
) -> None:
    _child_failed(take, dynamodb)
    child = RecordingChildCheck(record.ChildState(may_run_again=False))

    outcome = take(OTHER, child_execution=CHILD_OF_OTHER, liveness=RecordingLiveness(ENDED), child=child)

    assert (outcome.outcome, outcome.resumed_child) == (vocabulary.Outcome.ACQUIRED, None)
    assert _stored(dynamodb)[record.CHILD_EXECUTION] == {"S": CHILD_OF_OTHER}


def test_a_failed_child_step_functions_says_nothing_about_is_looked_at_again_and_nothing_is_written(
    take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    _child_failed(take, dynamodb)
    before = _stored(dynamodb)
    dynamodb_calls.clear()
    child = RecordingChildCheck(record.ChildState(may_run_again=False, in_doubt=True))

    outcome = take(OTHER, child_execution=CHILD_OF_OTHER, liveness=RecordingLiveness(ENDED), child=child)

    assert (outcome.outcome, outcome.look_again_at, outcome.wakes_waiters) == (vocabulary.Outcome.BUSY, NOW + 1, False)
    assert _operations(dynamodb_calls) == ["GetItem"]
    assert _stored(dynamodb) == before


def test_a_repeat_with_another_payload_does_not_resume_a_failed_child_and_changes_nothing(
    take: Any, dynamodb: Any
) -> None:
    _child_failed(take, dynamodb, payload_hash="hash-of-the-first")
    before = _stored(dynamodb)
    child = RecordingChildCheck(record.ChildState(may_run_again=True, started_by=OWNER))

    # The child would rerun with the first run's input: another payload is another request.
    with pytest.raises(errors.IdempotencyPayloadMismatchError):
        take(
            OTHER,
            child_execution=CHILD_OF_OTHER,
            payload_hash="hash-of-another",
            liveness=RecordingLiveness(ENDED),
            child=child,
        )
    assert _stored(dynamodb) == before


def test_without_step_functions_to_ask_a_failed_childs_record_is_taken_with_a_new_child(
    take: Any, dynamodb: Any
) -> None:
    _child_failed(take, dynamodb)

    outcome = take(OTHER, child_execution=CHILD_OF_OTHER)

    assert (outcome.outcome, outcome.resumed_child) == (vocabulary.Outcome.ACQUIRED, None)
    assert _stored(dynamodb)[record.CHILD_EXECUTION] == {"S": CHILD_OF_OTHER}


def test_a_waiter_whose_policy_is_to_fail_fails_with_a_failed_childs_error_without_asking_about_it(
    take: Any, dynamodb: Any
) -> None:
    _child_failed(take, dynamodb)
    child = RecordingChildCheck(record.ChildState(may_run_again=True, started_by=OWNER))

    outcome = take(
        OTHER, child_execution=CHILD_OF_OTHER, may_take_failed=False, liveness=RecordingLiveness(ENDED), child=child
    )

    assert (outcome.outcome, outcome.error) == (vocabulary.Outcome.FAILED, "StepFailed")
    assert child.asked == []


@pytest.mark.parametrize(("status", "expected"), [("SUCCESS", "COMPLETED"), ("IN_PROGRESS", "BUSY")])
def test_a_payload_hash_is_not_compared_with_a_record_written_without_one(
    take: Any, dynamodb: Any, status: str, expected: str
) -> None:
    _put(dynamodb, status, **{record.RESULT: '"stored"', record.LEASE_EXPIRY: NOW + LEASE})

    assert take(OTHER, payload_hash="any-hash").outcome == expected


# Only a guard against a hang, never a measure of speed: a busy machine is slow, not wrong.
HANG_GUARD_SECONDS = 300


def test_twenty_executions_taking_one_record_at_once_give_exactly_one_owner(take: Any, dynamodb: Any) -> None:
    executions = [f"{OTHER}-{number}" for number in range(20)]
    start = threading.Barrier(len(executions))
    outcomes: dict[str, Any] = {}

    def take_at_once(execution_id: str) -> None:
        start.wait(timeout=HANG_GUARD_SECONDS)
        outcomes[execution_id] = take(execution_id)

    threads = [threading.Thread(target=take_at_once, args=(execution_id,)) for execution_id in executions]
    # DynamoDB applies each conditional write atomically; moto alone does not (the emulator's adapter).
    with atomic_dynamodb_writes():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=HANG_GUARD_SECONDS)
    assert not any(thread.is_alive() for thread in threads)

    owners = [
        execution_id for execution_id, outcome in outcomes.items() if outcome.outcome == vocabulary.Outcome.ACQUIRED
    ]
    assert len(outcomes) == 20 and len(owners) == 1
    assert {
        outcome.holder.execution_id for outcome in outcomes.values() if outcome.outcome == vocabulary.Outcome.BUSY
    } == set(owners)
    assert _stored(dynamodb)[record.EXECUTION_ID] == {"S": owners[0]}


@pytest.mark.parametrize(
    ("status", "problem"),
    [("PAUSED", "PAUSED"), ("SUCCESS", "has no executionresult")],
    ids=["unknown status", "success without result"],
)
def test_a_record_in_no_state_the_envelope_knows_is_a_named_error(
    take: Any, dynamodb: Any, status: str, problem: str
) -> None:
    _put(dynamodb, status)

    with pytest.raises(errors.IdempotencyRecordStateError, match=problem):
        take(OTHER)


def test_the_record_never_holds_task_tokens(take: Any, dynamodb: Any) -> None:
    take(payload_hash="hash")
    holder = record.Holder(OWNER, RUN, NOW + LEASE)
    for number in range(3):
        assert waiter_slots.register_waiter(_store(dynamodb), KEY, holder.owner, f"token-{number}", NOW)

    item = _item(dynamodb)

    assert item is not None
    assert not any("token-" in str(value) for value in item.values())
    assert set(item) == {
        "id",
        record.STATUS,
        record.EXECUTION_ID,
        record.RUN_ID,
        record.START_TIME,
        record.TTL,
        record.LEASE_EXPIRY,
        record.WAITERS,
        record.PAYLOAD_HASH,
    }


# --------------------------------------------------------------------------- waiters
def test_waiters_get_slots_numbered_from_one_each_holding_its_token(take: Any, dynamodb: Any) -> None:
    take()
    holder = record.Holder(OWNER, RUN, NOW + LEASE)

    for number in (1, 2, 3):
        assert waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW) is True

    tag = record.owner_tag(record.Owner(OWNER, RUN))
    assert len(tag) == 16 and tag == holder.tag
    for number in (1, 2, 3):
        slot_id = f"{KEY}#waiter#{tag}#{number}"
        assert waiter_slots.waiter_slot_id(KEY, tag, number) == slot_id
        assert _item(dynamodb, slot_id) == {
            "id": {"S": slot_id},
            waiter_slots.TASK_TOKEN: {"S": f"token-{number}"},
            waiter_slots.WAITING_ON: {"S": OWNER},
            record.TTL: {"N": str(NOW + 500)},
        }
    assert _stored(dynamodb)[record.WAITERS] == {"N": "3"}


def test_fifty_waiters_registering_at_once_get_fifty_distinct_slots(take: Any, dynamodb: Any) -> None:
    take()
    holder = record.Holder(OWNER, RUN, NOW + LEASE)
    start = threading.Barrier(50)
    registered: list[bool] = []

    def register(number: int) -> None:
        # Bounds only against a hang: on a busy machine fifty threads may take long to all start.
        start.wait(timeout=HANG_GUARD_SECONDS)
        registered.append(
            waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW)
        )

    threads = [threading.Thread(target=register, args=(number,)) for number in range(50)]
    with atomic_dynamodb_writes():  # each increment atomic, as DynamoDB's are
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=HANG_GUARD_SECONDS)
    assert not any(thread.is_alive() for thread in threads)

    assert registered == [True] * 50
    assert _stored(dynamodb)[record.WAITERS] == {"N": "50"}
    slots = {
        item["id"]["S"]: item[waiter_slots.TASK_TOKEN]["S"] for item in _all_items(dynamodb) if item["id"]["S"] != KEY
    }
    assert set(slots) == {waiter_slots.waiter_slot_id(KEY, holder.tag, number) for number in range(1, 51)}
    assert sorted(slots.values()) == sorted(f"token-{number}" for number in range(50))


@pytest.mark.parametrize(
    "change",
    ["saved", "failed", "taken over", "expired", "absent", "another run"],
)
def test_a_waiter_is_refused_when_the_record_changed_since_it_looked(take: Any, dynamodb: Any, change: str) -> None:
    take()
    holder = record.Holder(OWNER, RUN, NOW + LEASE)
    now = NOW
    if change == "saved":
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json="1")
    elif change == "failed":
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", ""))
    elif change == "taken over":
        take(OTHER, now=NOW + LEASE + 1)
        now = NOW + LEASE + 1
    elif change == "expired":
        now = NOW + TTL_SECONDS + 1
    elif change == "absent":
        dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": KEY}})
    elif change == "another run":
        holder = record.Holder(OWNER, "2026-11-23T00:00:09.000Z", NOW + LEASE)
    before = _all_items(dynamodb)

    assert waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, "token", now) is False
    assert _all_items(dynamodb) == before  # no slot written, the record as it was


def test_the_record_does_not_grow_with_its_waiters_beyond_the_counter(take: Any, dynamodb: Any) -> None:
    take()
    before = _item(dynamodb)
    assert before is not None
    holder = record.Holder(OWNER, RUN, NOW + LEASE)

    for number in range(30):
        waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, "t" * 1000 + str(number), NOW)

    after = _item(dynamodb)
    assert after == {**before, record.WAITERS: {"N": "30"}}


# --------------------------------------------------------------------------- saving
def test_a_success_stores_the_json_text_as_given_in_utf8(take: Any, dynamodb: Any) -> None:
    take()
    result_json = '{"name":"Zoë","city":"東京","emoji":"🙂"}'

    saved = _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json=result_json)

    assert saved == record.SavedOutcome(
        key=KEY,
        status=vocabulary.Status.SUCCESS,
        owner_tag=record.owner_tag(record.Owner(OWNER, RUN)),
        waiter_count=0,
    )
    item = _item(dynamodb)
    assert item is not None
    assert item[record.STATUS] == {"S": vocabulary.Status.SUCCESS}
    assert item[record.RESULT] == {"S": result_json}  # not "\\u00eb": UTF-8, as given
    assert record.LEASE_EXPIRY not in item
    assert record.encode_result({"name": "Zoë", "n": [1, 2]}) == '{"name":"Zoë","n":[1,2]}'


def test_a_failure_stores_its_error_and_cause_cut_to_step_functions_limits(take: Any, dynamodb: Any) -> None:
    take()

    saved = _store(dynamodb).save_outcome(
        KEY, record.Owner(OWNER, RUN), failure=record.Failure("E" * 300, "c" * 40_000)
    )

    assert saved.status == vocabulary.Status.FAILED
    item = _item(dynamodb)
    assert item is not None
    assert item[record.STATUS] == {"S": vocabulary.Status.FAILED}
    assert item[record.ERROR] == {"S": "E" * 256}
    assert item[record.CAUSE] == {"S": "c" * 32_768}
    assert record.RESULT not in item and record.LEASE_EXPIRY not in item


def test_a_failure_saved_with_a_quiet_time_holds_the_lease_until_then(take: Any, dynamodb: Any) -> None:
    take()

    _store(dynamodb).save_outcome(
        KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why", quiet_until=NOW + 60)
    )

    assert _stored(dynamodb)[record.LEASE_EXPIRY] == {"N": str(NOW + 60)}


@pytest.mark.parametrize(
    ("execution_id", "run_id", "taken_over"),
    [(OTHER, RUN, False), (OWNER, "2026-11-23T00:00:09.000Z", False), (OWNER, RUN, True)],
    ids=["another execution", "another run", "owner whose record was taken over"],
)
def test_a_save_by_an_execution_that_does_not_own_the_record_raises_and_changes_nothing(
    take: Any,
    dynamodb: Any,
    execution_id: str,
    run_id: str,
    taken_over: bool,
) -> None:
    take()
    if taken_over:
        take(OTHER, now=NOW + LEASE + 1)
    before = _item(dynamodb)

    with pytest.raises(errors.IdempotencyRecordLostError, match="no longer IN_PROGRESS and owned by"):
        _store(dynamodb).save_outcome(KEY, record.Owner(execution_id, run_id), result_json='{"late":true}')

    assert _item(dynamodb) == before


def test_a_save_never_creates_a_record(dynamodb: Any) -> None:
    with pytest.raises(errors.IdempotencyRecordLostError, match="absent"):
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json="1")
    with pytest.raises(errors.IdempotencyRecordLostError):
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", ""))

    assert _all_items(dynamodb) == []


def test_saving_the_same_outcome_again_is_harmless_and_reports_the_same_waiter_count(take: Any, dynamodb: Any) -> None:
    take()
    holder = record.Holder(OWNER, RUN, NOW + LEASE)
    waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, "token-1", NOW)
    waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, "token-2", NOW)
    first = _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json='{"a":1}')
    stored = _item(dynamodb)

    again = _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json='{"a":1}')

    assert again == first and first.waiter_count == 2
    assert _item(dynamodb) == stored
    with pytest.raises(errors.IdempotencyRecordLostError):  # but not another outcome
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Late", ""))


class FlakyDynamoDB:
    """The DynamoDB client, except that the first ``update_item`` fails: after landing (a lost reply) or before (a
    throttle)."""

    def __init__(self, client: Any, lands: bool) -> None:
        self._client = client
        self._lands = lands
        self.update_attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_item(self, **kwargs: Any) -> Any:
        self.update_attempts += 1
        if self.update_attempts > 1:
            return self._client.update_item(**kwargs)
        if self._lands:
            self._client.update_item(**kwargs)
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")


@pytest.mark.parametrize("lands", [True, False], ids=["reply lost after it landed", "throttled"])
def test_a_save_whose_first_attempt_failed_succeeds_on_the_retry(take: Any, dynamodb: Any, lands: bool) -> None:
    take()
    waiter_slots.register_waiter(
        _store(dynamodb, 500),
        KEY,
        record.Holder(OWNER, RUN, NOW + LEASE).owner,
        "token-1",
        NOW,
    )
    flaky = FlakyDynamoDB(dynamodb, lands=lands)

    saved = _store(flaky).save_outcome(KEY, record.Owner(OWNER, RUN), result_json='{"a":1}')

    assert flaky.update_attempts == 2
    assert (saved.status, saved.waiter_count) == (vocabulary.Status.SUCCESS, 1)
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.STATUS], item[record.RESULT]) == (
        {"S": vocabulary.Status.SUCCESS},
        {"S": '{"a":1}'},
    )


# --------------------------------------------------------------------------- an owner that ended without saving
ENDED_RUN = ""  # the release function knows the execution, not the run its take used


def _ended(execution_id: str = OWNER) -> Any:
    return record.Owner(execution_id, ENDED_RUN, START)


def test_ending_the_holders_ownership_cuts_its_lease_and_wakes_nobody(take: Any, dynamodb: Any) -> None:
    take()
    holder = record.Holder(OWNER, RUN, NOW + LEASE)
    for number in (1, 2):
        waiter_slots.register_waiter(_store(dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW)
    before = _item(dynamodb)
    assert before is not None

    changed = ending.end_ownership(_store(dynamodb), KEY, ending.Ending(_ended(), NOW + 65), NOW + 5)

    assert changed == record.SavedOutcome(
        key=KEY, status=vocabulary.Status.IN_PROGRESS, owner_tag=holder.tag, waiter_count=2
    )
    assert _item(dynamodb) == {**before, record.LEASE_EXPIRY: {"N": str(NOW + 65)}}
    for number in (1, 2):  # the caller wakes them (wakeup.py); their slots are still there
        slot = _item(dynamodb, waiter_slots.waiter_slot_id(KEY, holder.tag, number))
        assert slot is not None and slot[waiter_slots.TASK_TOKEN] == {"S": f"token-{number}"}


def test_ending_a_failed_holders_ownership_records_failed_with_its_error(take: Any, dynamodb: Any) -> None:
    take()
    free_at = NOW + 65

    changed = ending.end_ownership(
        _store(dynamodb),
        KEY,
        ending.Ending(_ended(), free_at, failure=record.Failure("States.DataLimitExceeded", "too big")),
        NOW + 5,
    )

    assert changed is not None and changed.status == vocabulary.Status.FAILED
    item = _item(dynamodb)
    assert item is not None
    assert (
        item[record.STATUS],
        item[record.ERROR],
        item[record.CAUSE],
        item[record.LEASE_EXPIRY],
    ) == (
        {"S": vocabulary.Status.FAILED},
        {"S": "States.DataLimitExceeded"},
        {"S": "too big"},
        {"N": str(free_at)},
    )
    assert take(OTHER, now=free_at).outcome == vocabulary.Outcome.BUSY
    assert take(OTHER, now=free_at + 1).outcome == vocabulary.Outcome.ACQUIRED


def test_ending_ownership_a_second_time_changes_nothing_more(take: Any, dynamodb: Any) -> None:
    # EventBridge delivers at least once.
    take()
    first = ending.end_ownership(_store(dynamodb), KEY, ending.Ending(_ended(), NOW + 65), NOW + 5)
    after_first = _item(dynamodb)

    again = ending.end_ownership(_store(dynamodb), KEY, ending.Ending(_ended(), NOW + 65), NOW + 6)

    assert again == first
    assert _item(dynamodb) == after_first


@pytest.mark.parametrize("state", ["SUCCESS", "FAILED", "held by another execution"])
def test_ending_ownership_leaves_saved_records_and_other_owners_records_alone(
    take: Any, dynamodb: Any, state: str
) -> None:
    take()
    if state == "SUCCESS":
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json="1")
    elif state == "FAILED":
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("Boom", "why"))
    else:
        take(OTHER, now=NOW + LEASE + 1)
    before = _item(dynamodb)

    changed = ending.end_ownership(
        _store(dynamodb),
        KEY,
        ending.Ending(_ended(), NOW + LEASE + 60, failure=record.Failure("States.Timeout", "")),
        NOW + LEASE + 2,
    )

    assert changed is None
    assert _item(dynamodb) == before


def test_ending_ownership_with_no_record_holds_the_key_against_the_ended_executions_late_take(
    take: Any, dynamodb: Any
) -> None:
    stopped, free_at = NOW, NOW + 60
    release_client = _rival_client()

    def release_runs_meanwhile() -> None:
        assert (
            ending.end_ownership(
                _store(release_client),
                KEY,
                ending.Ending(_ended(), free_at),
                stopped + 1,
            )
            is None
        )

    # The ended execution's take read "absent", then the release ran, then its put (conditioned on absent) lands.
    _before_first(dynamodb, "PutItem", release_runs_meanwhile)
    late = take(OWNER, now=stopped + 2)

    assert late.outcome == vocabulary.Outcome.BUSY
    item = _item(dynamodb)
    assert item is not None
    assert {
        name: item[name]
        for name in (
            record.STATUS,
            record.EXECUTION_ID,
            record.RUN_ID,
            record.LEASE_EXPIRY,
            record.TTL,
        )
    } == {
        record.STATUS: {"S": vocabulary.Status.IN_PROGRESS},
        record.EXECUTION_ID: {"S": OWNER},
        record.RUN_ID: {"S": ENDED_RUN},
        record.LEASE_EXPIRY: {"N": str(free_at)},
        record.TTL: {"N": str(stopped + 1 + TTL_SECONDS)},
    }
    assert take(OTHER, now=free_at).outcome == vocabulary.Outcome.BUSY
    taken = take(OTHER, now=free_at + 1)
    assert (taken.outcome, _stored(dynamodb)[record.EXECUTION_ID]) == (vocabulary.Outcome.ACQUIRED, {"S": OTHER})


def test_ending_ownership_of_an_expired_record_holds_the_key_until_free_at(take: Any, dynamodb: Any) -> None:
    take()
    now = NOW + TTL_SECONDS + 1  # the old record counts as absent

    assert ending.end_ownership(_store(dynamodb), KEY, ending.Ending(_ended(), now + 60), now) is None

    item = _item(dynamodb)
    assert item is not None
    assert (item[record.LEASE_EXPIRY], item[record.TTL]) == (
        {"N": str(now + 60)},
        {"N": str(now + TTL_SECONDS)},
    )
    assert take(OTHER, now=now + 1).outcome == vocabulary.Outcome.BUSY


def test_ending_ownership_cuts_the_lease_of_a_take_that_lands_between_its_two_writes(take: Any, dynamodb: Any) -> None:
    # The release finds no record (its update is refused), then the ended execution's own take lands
    # before the release's put: the put is refused, and the release cuts the new record's lease instead.
    stopped, free_at = NOW, NOW + 60
    release_client = _rival_client()
    _before_first(release_client, "PutItem", lambda: take(OWNER, now=stopped + 1))

    changed = ending.end_ownership(_store(release_client), KEY, ending.Ending(_ended(), free_at), stopped + 1)

    item = _item(dynamodb)
    assert changed is not None and changed.status == vocabulary.Status.IN_PROGRESS
    assert item is not None and item[record.EXECUTION_ID] == {"S": OWNER}
    assert item[record.LEASE_EXPIRY] == {"N": str(free_at)}  # not the take's own lease of LEASE seconds


# ---------------------------------------------------------------------- a take still running after its execution ended
class RecordingRunning:
    """A ``RunningCheck`` answering from ``ended`` (the executions that have ended) and remembering whom it was asked
    about."""

    def __init__(self, *ended: str) -> None:
        self.ended = set(ended)
        self.asked: list[str] = []

    def __call__(self, execution_id: str) -> bool:
        self.asked.append(execution_id)
        return execution_id not in self.ended


def test_a_take_whose_execution_has_ended_takes_back_none_of_its_own_records(take: Any, dynamodb: Any) -> None:
    # What the release leaves for an ended execution that had no record yet: held by it until its calls can have ended.
    free_at = NOW + 2
    _put(
        dynamodb,
        vocabulary.Status.IN_PROGRESS,
        **{record.RUN_ID: "", record.LEASE_EXPIRY: free_at},
    )
    before = _item(dynamodb)
    running = RecordingRunning(OWNER)

    with pytest.raises(errors.IdempotencyExecutionEndedError) as refused:
        take(
            OWNER,
            now=free_at + 5,
            liveness=RecordingLiveness(record.Liveness(can_act=False, free_at=free_at)),
            still_running=running,
        )

    assert OWNER in str(refused.value) and KEY in str(refused.value)
    assert running.asked == [OWNER]
    assert _item(dynamodb) == before


def test_a_take_whose_execution_has_ended_takes_over_no_other_ended_holder(take: Any, dynamodb: Any) -> None:
    take(OTHER)
    before = _item(dynamodb)
    now = NOW + LEASE + 1

    with pytest.raises(errors.IdempotencyExecutionEndedError):
        take(
            OWNER,
            now=now,
            liveness=RecordingLiveness(record.Liveness(can_act=False)),
            still_running=RecordingRunning(OWNER),
        )

    assert _item(dynamodb) == before


def test_a_failed_record_is_taken_again_only_by_a_running_execution(take: Any, dynamodb: Any) -> None:
    _put(
        dynamodb,
        vocabulary.Status.FAILED,
        **{record.EXECUTION_ID: OTHER, record.LEASE_EXPIRY: NOW - 1, record.ERROR: "StepFailed"},
    )
    before = _item(dynamodb)

    with pytest.raises(errors.IdempotencyExecutionEndedError):
        take(OWNER, still_running=RecordingRunning(OWNER))
    assert _item(dynamodb) == before

    running = RecordingRunning()
    assert take(OWNER, still_running=running).outcome == vocabulary.Outcome.ACQUIRED
    assert running.asked == [OWNER]


def test_a_fresh_key_is_taken_without_asking_whether_the_caller_runs(take: Any, dynamodb: Any) -> None:
    running = RecordingRunning(OWNER)

    assert take(OWNER, still_running=running).outcome == vocabulary.Outcome.ACQUIRED
    assert running.asked == []


# --------------------------------------------------------------------------- an ended holder that can still be redriven
def test_an_ended_holder_that_can_still_be_redriven_is_resumed_and_waited_for_not_taken_over(
    take: Any, dynamodb: Any
) -> None:
    take()
    now = NOW + LEASE + 1
    resumed: list[Any] = []

    def resume(holder: Any) -> bool:
        resumed.append(holder)
        return True

    busy = take(
        OTHER,
        now=now,
        liveness=RecordingLiveness(record.Liveness(can_act=False, free_at=now - 1, redrivable=True)),
        resume=resume,
    )

    assert (busy.outcome, busy.taken_over, busy.look_again_at) == (vocabulary.Outcome.BUSY, False, now + LEASE)
    assert [holder.execution_id for holder in resumed] == [OWNER]
    item = _item(dynamodb)
    assert item is not None
    assert (item[record.EXECUTION_ID], item[record.LEASE_EXPIRY]) == ({"S": OWNER}, {"N": str(now + LEASE)})


def test_an_ended_holder_that_can_never_run_again_is_taken_over(take: Any, dynamodb: Any) -> None:
    take()
    now = NOW + LEASE + 1

    taken = take(
        OTHER,
        now=now,
        liveness=RecordingLiveness(record.Liveness(can_act=False, free_at=now - 1, redrivable=True)),
        resume=lambda holder: False,
    )

    assert (taken.outcome, taken.taken_over) == (vocabulary.Outcome.ACQUIRED, True)
    item = _item(dynamodb)
    assert item is not None and item[record.EXECUTION_ID] == {"S": OTHER}


def test_a_release_keeps_a_stopped_owners_record_at_least_until_asked(take: Any, dynamodb: Any) -> None:
    take()
    keep_until = NOW + 14 * 24 * 3600

    ending.end_ownership(
        _store(dynamodb),
        KEY,
        ending.Ending(record.Owner(OWNER, RUN, START), NOW + 7, keep_until=keep_until),
        NOW + 5,
    )

    item = _item(dynamodb)
    assert item is not None
    assert (item[record.LEASE_EXPIRY], item[record.TTL]) == ({"N": str(NOW + 7)}, {"N": str(keep_until)})


# ------------------------------------------------------ a failure the release recorded for an owner that ended unsaved
def _ended_unsaved(dynamodb: Any, take: Any) -> None:
    """OWNER took the record, then ended without saving; its release recorded the failure (quiet until NOW + 7)."""
    take()
    ending.end_ownership(
        _store(dynamodb),
        KEY,
        ending.Ending(record.Owner(OWNER, RUN, START), NOW + 7, failure=record.Failure("ThrottlingException", "")),
        NOW + 5,
    )


def test_a_redriven_owner_saves_over_the_failure_its_release_recorded(take: Any, dynamodb: Any) -> None:
    _ended_unsaved(dynamodb, take)

    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json='{"ok":true}')

    item = _item(dynamodb)
    assert item is not None
    assert (item[record.STATUS], item[record.RESULT]) == (
        {"S": vocabulary.Status.SUCCESS},
        {"S": '{"ok":true}'},
    )
    assert {record.ERROR, record.CAUSE, record.ENDED_UNSAVED, record.LEASE_EXPIRY}.isdisjoint(item)


def test_a_failure_the_owner_saved_itself_is_never_saved_over(take: Any, dynamodb: Any) -> None:
    take()
    _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), failure=record.Failure("StepFailed", ""))

    with pytest.raises(errors.IdempotencyRecordLostError):
        _store(dynamodb).save_outcome(KEY, record.Owner(OWNER, RUN), result_json="1")


def test_a_duplicate_resumes_an_owner_that_ended_unsaved_instead_of_taking_its_failure_over(
    take: Any, dynamodb: Any
) -> None:
    _ended_unsaved(dynamodb, take)
    resumed: list[str] = []

    def resume(holder: Any) -> bool:
        resumed.append(holder.execution_id)
        return True

    busy = take(
        OTHER,
        now=NOW + 8,
        liveness=RecordingLiveness(record.Liveness(can_act=False, free_at=NOW + 7, redrivable=True)),
        resume=resume,
    )

    assert (busy.outcome, busy.wakes_waiters) == (
        vocabulary.Outcome.BUSY,
        False,
    )  # waiters poll: nobody registers on a FAILED record
    assert resumed == [OWNER]
    item = _item(dynamodb)
    assert item is not None and (item[record.STATUS], item[record.EXECUTION_ID]) == (
        {"S": vocabulary.Status.FAILED},
        {"S": OWNER},
    )


def test_a_redriven_owner_takes_back_the_record_its_release_failed(take: Any, dynamodb: Any) -> None:
    _ended_unsaved(dynamodb, take)
    running = RecordingRunning()

    taken = take(OWNER, now=NOW + 6, still_running=running)  # within its own quiet period: it is that owner

    assert taken.outcome == vocabulary.Outcome.ACQUIRED
    assert running.asked == [OWNER]


def test_the_record_a_release_left_for_an_execution_that_never_took_it_is_taken_over_not_resumed(
    take: Any, dynamodb: Any
) -> None:
    ending.end_ownership(
        _store(dynamodb),
        KEY,
        ending.Ending(record.Owner(OWNER, "", START), NOW + 2, keep_until=NOW + 10**6),
        NOW,
    )
    left = _item(dynamodb)
    resumed: list[Any] = []

    taken = take(
        OTHER,
        now=NOW + 3,
        liveness=RecordingLiveness(record.Liveness(can_act=False, free_at=NOW + 2, redrivable=True)),
        resume=resumed.append,
    )

    assert left is not None and left[record.TTL] == {
        "N": str(NOW + TTL_SECONDS)
    }  # its run never began: nothing to keep
    assert (taken.outcome, resumed) == (vocabulary.Outcome.ACQUIRED, [])
