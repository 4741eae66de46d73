"""The record's reads and conditional writes (the layer's ``record.py``) against moto's DynamoDB.

Every test starts from the table the template creates (partition key ``id``) and drives the
record as the envelope's functions do: take, extend a live holder's lease, register waiters,
save, and end the ownership of an execution that stopped without saving.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from emulator.adapters import atomic_dynamodb_writes
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
HOLDER_CHECKS = ("liveness", "still_running", "resume")


def _store(layer: SimpleNamespace, client: Any, record_ttl_seconds: int = TTL_SECONDS) -> Any:
    """The layer's store of the test table, through ``client``."""
    return layer.store.RecordStore(client, TABLE, record_ttl_seconds, LEASE)


@pytest.fixture
def take(layer: SimpleNamespace, dynamodb: Any) -> Callable[..., Any]:
    """``take(execution_id, now=..., run_id=..., client=..., **keywords)``: one look at ``KEY``'s record.

    The keywords are ``take.HolderChecks``'s (``liveness``, ``still_running``, ``resume``) and
    ``decision.TakeRequest``'s (``may_take_failed``, ``payload_hash``, ...).
    """

    def take(execution_id: str = OWNER, now: int = NOW, run_id: str = RUN, client: Any = None, **kwargs: Any) -> Any:
        checks = layer.take.HolderChecks(**{name: kwargs.pop(name) for name in HOLDER_CHECKS if name in kwargs})
        request = layer.decision.TakeRequest(KEY, layer.record.Owner(execution_id, run_id, START), **kwargs)
        return layer.take.take_record(_store(layer, client or dynamodb), request, now, checks)

    return take


def _item(client: Any, key: str = KEY) -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


def _all_items(client: Any) -> list[dict[str, Any]]:
    return client.scan(TableName=TABLE, ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def _put(client: Any, layer: SimpleNamespace, status: str, **attributes: Any) -> dict[str, Any]:
    """Write a record as another version, or another execution, left it (values given plainly: str -> S, int -> N)."""
    plain: dict[str, Any] = {
        layer.record.STATUS: status,
        layer.record.EXECUTION_ID: OWNER,
        layer.record.RUN_ID: RUN,
        layer.record.START_TIME: START,
        layer.record.TTL: NOW + TTL_SECONDS,
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
    """A ``layer.take.LivenessCheck`` that answers what it is told and remembers whom it was asked about."""

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
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    outcome = take()

    assert (outcome.outcome, outcome.key, outcome.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, KEY, False)
    assert _operations(dynamodb_calls) == ["GetItem", "PutItem"]
    assert dynamodb_calls[0][1]["ConsistentRead"] is True
    assert "ConditionExpression" in dynamodb_calls[1][1]
    assert _item(dynamodb) == {
        "id": {"S": KEY},
        layer.record.STATUS: {"S": layer.vocabulary.Status.IN_PROGRESS},
        layer.record.EXECUTION_ID: {"S": OWNER},
        layer.record.RUN_ID: {"S": RUN},
        layer.record.START_TIME: {"S": START},
        layer.record.TTL: {"N": str(NOW + TTL_SECONDS)},
        layer.record.LEASE_EXPIRY: {"N": str(NOW + LEASE)},
        layer.record.WAITERS: {"N": "0"},
    }


def test_the_take_stores_the_payload_hash_and_the_child_execution_it_is_given(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    child = "arn:aws:states:us-east-1:123456789012:execution:child:owner"

    take(payload_hash="hash-1", child_execution=child)

    item = _item(dynamodb)
    assert item is not None
    assert item[layer.record.PAYLOAD_HASH] == {"S": "hash-1"}
    assert item[layer.record.CHILD_EXECUTION] == {"S": child}


def test_a_hit_is_answered_by_one_consistent_read_and_no_write(
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take()
    _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json='{"b":[1,2],"a":"é"}')
    dynamodb_calls.clear()

    hit = take(OTHER)

    assert (hit.outcome, hit.result) == (layer.vocabulary.Outcome.COMPLETED, {"b": [1, 2], "a": "é"})
    assert hit.as_output() == {"outcome": layer.vocabulary.Outcome.COMPLETED, "key": KEY}
    assert _operations(dynamodb_calls) == ["GetItem"]
    assert dynamodb_calls[0][1]["ConsistentRead"] is True


@pytest.mark.parametrize("status", ["SUCCESS", "IN_PROGRESS", "FAILED"])
def test_a_record_whose_ttl_has_passed_counts_as_absent(
    layer: SimpleNamespace, take: Any, dynamodb: Any, status: str
) -> None:
    # DynamoDB's TTL deletion may come days late: the item is still there.
    _put(
        dynamodb,
        layer,
        status,
        **{layer.record.TTL: NOW - 1, layer.record.RESULT: "1", layer.record.LEASE_EXPIRY: NOW + LEASE},
    )

    outcome = take(OTHER)

    assert (outcome.outcome, outcome.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, False)
    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.STATUS], item[layer.record.EXECUTION_ID]) == (
        {"S": layer.vocabulary.Status.IN_PROGRESS},
        {"S": OTHER},
    )
    assert layer.record.RESULT not in item


def test_a_failed_record_is_taken_and_loses_its_failure(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    take()
    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why")
    )

    outcome = take(OTHER)

    assert (outcome.outcome, outcome.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, False)
    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.STATUS], item[layer.record.EXECUTION_ID]) == (
        {"S": layer.vocabulary.Status.IN_PROGRESS},
        {"S": OTHER},
    )
    assert layer.record.ERROR not in item and layer.record.CAUSE not in item


def test_a_failed_record_is_busy_while_the_failed_owners_calls_may_still_run(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why", quiet_until=NOW + 30)
    )

    early = take(OTHER, now=NOW + 30)
    late = take(OTHER, now=NOW + 31)

    assert (early.outcome, early.look_again_at) == (layer.vocabulary.Outcome.BUSY, NOW + 31)
    assert late.outcome == layer.vocabulary.Outcome.ACQUIRED


def test_a_waiter_that_must_report_a_failure_gets_the_owners_error_and_writes_nothing(
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take()
    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why")
    )
    before = _item(dynamodb)
    dynamodb_calls.clear()

    failed = take(OTHER, may_take_failed=False)

    assert failed.as_output() == {
        "outcome": layer.vocabulary.Outcome.FAILED,
        "key": KEY,
        "error": "Boom",
        "cause": "why",
    }
    assert _operations(dynamodb_calls) == ["GetItem"]
    assert _item(dynamodb) == before


def test_a_live_holders_record_is_busy_without_asking_step_functions_while_its_lease_runs(
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take()
    dynamodb_calls.clear()
    liveness = RecordingLiveness(layer.record.Liveness(can_act=False))

    busy = take(OTHER, now=NOW + LEASE, liveness=liveness)  # the lease's last second

    assert (busy.outcome, busy.look_again_at) == (layer.vocabulary.Outcome.BUSY, NOW + LEASE + 1)
    assert busy.as_output() == {"outcome": layer.vocabulary.Outcome.BUSY, "key": KEY, "heldBy": OWNER, "heldByRun": RUN}
    assert liveness.asked == []
    assert _operations(dynamodb_calls) == ["GetItem"]


def test_an_expired_lease_of_a_holder_that_can_still_act_is_extended_not_taken(
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls
) -> None:
    take(child_execution="arn:aws:states:us-east-1:123456789012:execution:child:owner")
    dynamodb_calls.clear()
    liveness = RecordingLiveness(layer.record.Liveness(can_act=True))
    now = NOW + LEASE + 1

    busy = take(OTHER, now=now, liveness=liveness)

    assert (busy.outcome, busy.taken_over, busy.look_again_at) == (layer.vocabulary.Outcome.BUSY, False, now + LEASE)
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
    assert (item[layer.record.EXECUTION_ID], item[layer.record.LEASE_EXPIRY]) == ({"S": OWNER}, {"N": str(now + LEASE)})


def test_an_ended_holders_record_is_busy_until_its_calls_can_have_ended_then_taken_over(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    free_at = NOW + LEASE + 50
    liveness = RecordingLiveness(layer.record.Liveness(can_act=False, free_at=free_at))
    before = _item(dynamodb)

    waiting = take(OTHER, now=free_at - 1, liveness=liveness)
    assert (waiting.outcome, waiting.look_again_at) == (layer.vocabulary.Outcome.BUSY, free_at + 1)
    assert _item(dynamodb) == before

    taken = take(OTHER, now=free_at, liveness=liveness)
    assert (taken.outcome, taken.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, True)
    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.EXECUTION_ID], item[layer.record.LEASE_EXPIRY]) == (
        {"S": OTHER},
        {"N": str(free_at + LEASE)},
    )


def test_without_a_liveness_check_an_expired_lease_alone_decides(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    # Express workflows: executions cannot be described.
    take()

    assert take(OTHER, now=NOW + LEASE).outcome == layer.vocabulary.Outcome.BUSY
    taken = take(OTHER, now=NOW + LEASE + 1)

    assert (taken.outcome, taken.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, True)


def test_a_lease_is_extended_only_while_the_record_is_as_it_was_read(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    seen = _item(dynamodb)
    assert seen is not None

    store, seen_record = _store(layer, dynamodb), layer.record.parse_record(seen)
    assert store.extend_lease(seen_record, NOW + 500).landed
    changed = store.extend_lease(seen_record, NOW + 900)  # the lease it read is gone

    assert not changed.landed and changed.record.lease_expiry == NOW + 500
    assert _item(dynamodb)[layer.record.LEASE_EXPIRY] == {"N": str(NOW + 500)}  # type: ignore[index]


@pytest.mark.parametrize("rival_saves", [False, True], ids=["rival holds it", "rival saved it"])
def test_a_record_that_changed_between_the_read_and_the_put_is_read_from_the_refusal_not_overwritten(
    layer: SimpleNamespace, take: Any, dynamodb: Any, dynamodb_calls: Calls, rival_saves: bool
) -> None:
    rival = _rival_client()

    def another_execution_takes_it() -> None:
        assert take(OTHER, client=rival).outcome == layer.vocabulary.Outcome.ACQUIRED
        if rival_saves:
            _store(layer, rival).save_outcome(KEY, layer.record.Owner(OTHER, RUN), result_json='{"by":"rival"}')

    _before_first(dynamodb, "PutItem", another_execution_takes_it)

    outcome = take(OWNER)

    if rival_saves:
        assert (outcome.outcome, outcome.result) == (layer.vocabulary.Outcome.COMPLETED, {"by": "rival"})
    else:
        assert (outcome.outcome, outcome.holder.execution_id) == (layer.vocabulary.Outcome.BUSY, OTHER)
    assert _operations(dynamodb_calls) == ["GetItem", "PutItem"]  # no second read: the refusal carried the record
    item = _item(dynamodb)
    assert item is not None and item[layer.record.EXECUTION_ID] == {"S": OTHER}


def test_a_retried_take_by_the_same_owner_run_is_acquired_again(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()

    retried = take()  # a retried invocation whose first attempt took the record but lost the reply
    another_run = take(run_id="2026-11-23T00:00:09.000Z")  # the same Express execution run again

    assert (retried.outcome, retried.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, False)
    assert another_run.outcome == layer.vocabulary.Outcome.BUSY
    assert _item(dynamodb)[layer.record.RUN_ID] == {"S": RUN}  # type: ignore[index]


@pytest.mark.parametrize("status", ["SUCCESS", "IN_PROGRESS"])
def test_a_repeat_with_another_payload_fails_with_a_named_error_and_changes_nothing(
    layer: SimpleNamespace, take: Any, dynamodb: Any, status: str
) -> None:
    take(payload_hash="hash-of-the-first")
    if status == "SUCCESS":
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json="1")
    before = _item(dynamodb)

    with pytest.raises(layer.errors.IdempotencyPayloadMismatchError) as mismatch:
        take(OTHER, payload_hash="hash-of-another")

    assert KEY in str(mismatch.value)
    assert _item(dynamodb) == before


def test_a_payload_hash_is_not_compared_with_a_failed_record(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    take(payload_hash="hash-of-the-first")
    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why")
    )

    outcome = take(OTHER, payload_hash="hash-of-another")

    assert outcome.outcome == layer.vocabulary.Outcome.ACQUIRED
    assert _item(dynamodb)[layer.record.PAYLOAD_HASH] == {"S": "hash-of-another"}  # type: ignore[index]


@pytest.mark.parametrize(("status", "expected"), [("SUCCESS", "COMPLETED"), ("IN_PROGRESS", "BUSY")])
def test_a_payload_hash_is_not_compared_with_a_record_written_without_one(
    layer: SimpleNamespace, take: Any, dynamodb: Any, status: str, expected: str
) -> None:
    _put(dynamodb, layer, status, **{layer.record.RESULT: '"stored"', layer.record.LEASE_EXPIRY: NOW + LEASE})

    assert take(OTHER, payload_hash="any-hash").outcome == expected


# Only a guard against a hang, never a measure of speed: a busy machine is slow, not wrong.
HANG_GUARD_SECONDS = 300


def test_twenty_executions_taking_one_record_at_once_give_exactly_one_owner(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
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
        execution_id
        for execution_id, outcome in outcomes.items()
        if outcome.outcome == layer.vocabulary.Outcome.ACQUIRED
    ]
    assert len(outcomes) == 20 and len(owners) == 1
    assert {
        outcome.holder.execution_id for outcome in outcomes.values() if outcome.outcome == layer.vocabulary.Outcome.BUSY
    } == set(owners)
    assert _item(dynamodb)[layer.record.EXECUTION_ID] == {"S": owners[0]}  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "problem"),
    [("PAUSED", "PAUSED"), ("SUCCESS", "has no executionresult")],
    ids=["unknown status", "success without result"],
)
def test_a_record_in_no_state_the_envelope_knows_is_a_named_error(
    layer: SimpleNamespace, take: Any, dynamodb: Any, status: str, problem: str
) -> None:
    _put(dynamodb, layer, status)

    with pytest.raises(layer.errors.IdempotencyRecordStateError, match=problem):
        take(OTHER)


def test_the_record_never_holds_task_tokens(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    take(payload_hash="hash")
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)
    for number in range(3):
        assert layer.waiter_slots.register_waiter(_store(layer, dynamodb), KEY, holder.owner, f"token-{number}", NOW)

    item = _item(dynamodb)

    assert item is not None
    assert not any("token-" in str(value) for value in item.values())
    assert set(item) == {
        "id",
        layer.record.STATUS,
        layer.record.EXECUTION_ID,
        layer.record.RUN_ID,
        layer.record.START_TIME,
        layer.record.TTL,
        layer.record.LEASE_EXPIRY,
        layer.record.WAITERS,
        layer.record.PAYLOAD_HASH,
    }


# --------------------------------------------------------------------------- waiters
def test_waiters_get_slots_numbered_from_one_each_holding_its_token(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)

    for number in (1, 2, 3):
        assert (
            layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW)
            is True
        )

    tag = layer.record.owner_tag(layer.record.Owner(OWNER, RUN))
    assert len(tag) == 16 and tag == holder.tag
    for number in (1, 2, 3):
        slot_id = f"{KEY}#waiter#{tag}#{number}"
        assert layer.waiter_slots.waiter_slot_id(KEY, tag, number) == slot_id
        assert _item(dynamodb, slot_id) == {
            "id": {"S": slot_id},
            layer.waiter_slots.TASK_TOKEN: {"S": f"token-{number}"},
            layer.waiter_slots.WAITING_ON: {"S": OWNER},
            layer.record.TTL: {"N": str(NOW + 500)},
        }
    assert _item(dynamodb)[layer.record.WAITERS] == {"N": "3"}  # type: ignore[index]


def test_fifty_waiters_registering_at_once_get_fifty_distinct_slots(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)
    start = threading.Barrier(50)
    registered: list[bool] = []

    def register(number: int) -> None:
        # Bounds only against a hang: on a busy machine fifty threads may take long to all start.
        start.wait(timeout=HANG_GUARD_SECONDS)
        registered.append(
            layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW)
        )

    threads = [threading.Thread(target=register, args=(number,)) for number in range(50)]
    with atomic_dynamodb_writes():  # each increment atomic, as DynamoDB's are
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=HANG_GUARD_SECONDS)
    assert not any(thread.is_alive() for thread in threads)

    assert registered == [True] * 50
    assert _item(dynamodb)[layer.record.WAITERS] == {"N": "50"}  # type: ignore[index]
    slots = {
        item["id"]["S"]: item[layer.waiter_slots.TASK_TOKEN]["S"]
        for item in _all_items(dynamodb)
        if item["id"]["S"] != KEY
    }
    assert set(slots) == {layer.waiter_slots.waiter_slot_id(KEY, holder.tag, number) for number in range(1, 51)}
    assert sorted(slots.values()) == sorted(f"token-{number}" for number in range(50))


@pytest.mark.parametrize(
    "change",
    ["saved", "failed", "taken over", "expired", "absent", "another run"],
)
def test_a_waiter_is_refused_when_the_record_changed_since_it_looked(
    layer: SimpleNamespace, take: Any, dynamodb: Any, change: str
) -> None:
    take()
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)
    now = NOW
    if change == "saved":
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json="1")
    elif change == "failed":
        _store(layer, dynamodb).save_outcome(
            KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "")
        )
    elif change == "taken over":
        take(OTHER, now=NOW + LEASE + 1)
        now = NOW + LEASE + 1
    elif change == "expired":
        now = NOW + TTL_SECONDS + 1
    elif change == "absent":
        dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": KEY}})
    elif change == "another run":
        holder = layer.record.Holder(OWNER, "2026-11-23T00:00:09.000Z", NOW + LEASE)
    before = _all_items(dynamodb)

    assert layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, "token", now) is False
    assert _all_items(dynamodb) == before  # no slot written, the record as it was


def test_the_record_does_not_grow_with_its_waiters_beyond_the_counter(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    before = _item(dynamodb)
    assert before is not None
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)

    for number in range(30):
        layer.waiter_slots.register_waiter(
            _store(layer, dynamodb, 500), KEY, holder.owner, "t" * 1000 + str(number), NOW
        )

    after = _item(dynamodb)
    assert after == {**before, layer.record.WAITERS: {"N": "30"}}


# --------------------------------------------------------------------------- saving
def test_a_success_stores_the_json_text_as_given_in_utf8(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    take()
    result_json = '{"name":"Zoë","city":"東京","emoji":"🙂"}'

    saved = _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json=result_json)

    assert saved == layer.record.SavedOutcome(
        key=KEY,
        status=layer.vocabulary.Status.SUCCESS,
        owner_tag=layer.record.owner_tag(layer.record.Owner(OWNER, RUN)),
        waiter_count=0,
    )
    item = _item(dynamodb)
    assert item is not None
    assert item[layer.record.STATUS] == {"S": layer.vocabulary.Status.SUCCESS}
    assert item[layer.record.RESULT] == {"S": result_json}  # not "\\u00eb": UTF-8, as given
    assert layer.record.LEASE_EXPIRY not in item
    assert layer.record.encode_result({"name": "Zoë", "n": [1, 2]}) == '{"name":"Zoë","n":[1,2]}'


def test_a_failure_stores_its_error_and_cause_cut_to_step_functions_limits(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()

    saved = _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("E" * 300, "c" * 40_000)
    )

    assert saved.status == layer.vocabulary.Status.FAILED
    item = _item(dynamodb)
    assert item is not None
    assert item[layer.record.STATUS] == {"S": layer.vocabulary.Status.FAILED}
    assert item[layer.record.ERROR] == {"S": "E" * 256}
    assert item[layer.record.CAUSE] == {"S": "c" * 32_768}
    assert layer.record.RESULT not in item and layer.record.LEASE_EXPIRY not in item


def test_a_failure_saved_with_a_quiet_time_holds_the_lease_until_then(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()

    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why", quiet_until=NOW + 60)
    )

    assert _item(dynamodb)[layer.record.LEASE_EXPIRY] == {"N": str(NOW + 60)}  # type: ignore[index]


@pytest.mark.parametrize(
    ("execution_id", "run_id", "taken_over"),
    [(OTHER, RUN, False), (OWNER, "2026-11-23T00:00:09.000Z", False), (OWNER, RUN, True)],
    ids=["another execution", "another run", "owner whose record was taken over"],
)
def test_a_save_by_an_execution_that_does_not_own_the_record_raises_and_changes_nothing(
    layer: SimpleNamespace,
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

    with pytest.raises(layer.errors.IdempotencyRecordLostError, match="no longer IN_PROGRESS and owned by"):
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(execution_id, run_id), result_json='{"late":true}')

    assert _item(dynamodb) == before


def test_a_save_never_creates_a_record(layer: SimpleNamespace, dynamodb: Any) -> None:
    with pytest.raises(layer.errors.IdempotencyRecordLostError, match="absent"):
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json="1")
    with pytest.raises(layer.errors.IdempotencyRecordLostError):
        _store(layer, dynamodb).save_outcome(
            KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "")
        )

    assert _all_items(dynamodb) == []


def test_saving_the_same_outcome_again_is_harmless_and_reports_the_same_waiter_count(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)
    layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, "token-1", NOW)
    layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, "token-2", NOW)
    first = _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json='{"a":1}')
    stored = _item(dynamodb)

    again = _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json='{"a":1}')

    assert again == first and first.waiter_count == 2
    assert _item(dynamodb) == stored
    with pytest.raises(layer.errors.IdempotencyRecordLostError):  # but not another outcome
        _store(layer, dynamodb).save_outcome(
            KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Late", "")
        )


class FlakyDynamoDB:
    """The DynamoDB client, except that the first ``update_item`` fails: after landing (a lost reply) or before (a throttle)."""

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
def test_a_save_whose_first_attempt_failed_succeeds_on_the_retry(
    layer: SimpleNamespace, take: Any, dynamodb: Any, lands: bool
) -> None:
    take()
    layer.waiter_slots.register_waiter(
        _store(layer, dynamodb, 500),
        KEY,
        layer.record.Holder(OWNER, RUN, NOW + LEASE).owner,
        "token-1",
        NOW,
    )
    flaky = FlakyDynamoDB(dynamodb, lands=lands)

    saved = _store(layer, flaky).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json='{"a":1}')

    assert flaky.update_attempts == 2
    assert (saved.status, saved.waiter_count) == (layer.vocabulary.Status.SUCCESS, 1)
    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.STATUS], item[layer.record.RESULT]) == (
        {"S": layer.vocabulary.Status.SUCCESS},
        {"S": '{"a":1}'},
    )


# --------------------------------------------------------------------------- an owner that ended without saving
ENDED_RUN = ""  # the release function knows the execution, not the run its take used


def _ended(layer: SimpleNamespace, execution_id: str = OWNER) -> Any:
    return layer.record.Owner(execution_id, ENDED_RUN, START)


def test_ending_the_holders_ownership_cuts_its_lease_and_wakes_nobody(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    holder = layer.record.Holder(OWNER, RUN, NOW + LEASE)
    for number in (1, 2):
        layer.waiter_slots.register_waiter(_store(layer, dynamodb, 500), KEY, holder.owner, f"token-{number}", NOW)
    before = _item(dynamodb)
    assert before is not None

    changed = layer.ending.end_ownership(
        _store(layer, dynamodb), KEY, layer.ending.Ending(_ended(layer), NOW + 65), NOW + 5
    )

    assert changed == layer.record.SavedOutcome(
        key=KEY, status=layer.vocabulary.Status.IN_PROGRESS, owner_tag=holder.tag, waiter_count=2
    )
    assert _item(dynamodb) == {**before, layer.record.LEASE_EXPIRY: {"N": str(NOW + 65)}}
    for number in (1, 2):  # the caller wakes them (wakeup.py); their slots are still there
        slot = _item(dynamodb, layer.waiter_slots.waiter_slot_id(KEY, holder.tag, number))
        assert slot is not None and slot[layer.waiter_slots.TASK_TOKEN] == {"S": f"token-{number}"}


def test_ending_a_failed_holders_ownership_records_failed_with_its_error(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    free_at = NOW + 65

    changed = layer.ending.end_ownership(
        _store(layer, dynamodb),
        KEY,
        layer.ending.Ending(
            _ended(layer), free_at, failure=layer.record.Failure("States.DataLimitExceeded", "too big")
        ),
        NOW + 5,
    )

    assert changed is not None and changed.status == layer.vocabulary.Status.FAILED
    item = _item(dynamodb)
    assert item is not None
    assert (
        item[layer.record.STATUS],
        item[layer.record.ERROR],
        item[layer.record.CAUSE],
        item[layer.record.LEASE_EXPIRY],
    ) == (
        {"S": layer.vocabulary.Status.FAILED},
        {"S": "States.DataLimitExceeded"},
        {"S": "too big"},
        {"N": str(free_at)},
    )
    assert take(OTHER, now=free_at).outcome == layer.vocabulary.Outcome.BUSY
    assert take(OTHER, now=free_at + 1).outcome == layer.vocabulary.Outcome.ACQUIRED


def test_ending_ownership_a_second_time_changes_nothing_more(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    # EventBridge delivers at least once.
    take()
    first = layer.ending.end_ownership(
        _store(layer, dynamodb), KEY, layer.ending.Ending(_ended(layer), NOW + 65), NOW + 5
    )
    after_first = _item(dynamodb)

    again = layer.ending.end_ownership(
        _store(layer, dynamodb), KEY, layer.ending.Ending(_ended(layer), NOW + 65), NOW + 6
    )

    assert again == first
    assert _item(dynamodb) == after_first


@pytest.mark.parametrize("state", ["SUCCESS", "FAILED", "held by another execution"])
def test_ending_ownership_leaves_saved_records_and_other_owners_records_alone(
    layer: SimpleNamespace, take: Any, dynamodb: Any, state: str
) -> None:
    take()
    if state == "SUCCESS":
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json="1")
    elif state == "FAILED":
        _store(layer, dynamodb).save_outcome(
            KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("Boom", "why")
        )
    else:
        take(OTHER, now=NOW + LEASE + 1)
    before = _item(dynamodb)

    changed = layer.ending.end_ownership(
        _store(layer, dynamodb),
        KEY,
        layer.ending.Ending(_ended(layer), NOW + LEASE + 60, failure=layer.record.Failure("States.Timeout", "")),
        NOW + LEASE + 2,
    )

    assert changed is None
    assert _item(dynamodb) == before


def test_ending_ownership_with_no_record_holds_the_key_against_the_ended_executions_late_take(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    stopped, free_at = NOW, NOW + 60
    release_client = _rival_client()

    def release_runs_meanwhile() -> None:
        assert (
            layer.ending.end_ownership(
                _store(layer, release_client),
                KEY,
                layer.ending.Ending(_ended(layer), free_at),
                stopped + 1,
            )
            is None
        )

    # The ended execution's take read "absent", then the release ran, then its put (conditioned on absent) lands.
    _before_first(dynamodb, "PutItem", release_runs_meanwhile)
    late = take(OWNER, now=stopped + 2)

    assert late.outcome == layer.vocabulary.Outcome.BUSY
    item = _item(dynamodb)
    assert item is not None
    assert {
        name: item[name]
        for name in (
            layer.record.STATUS,
            layer.record.EXECUTION_ID,
            layer.record.RUN_ID,
            layer.record.LEASE_EXPIRY,
            layer.record.TTL,
        )
    } == {
        layer.record.STATUS: {"S": layer.vocabulary.Status.IN_PROGRESS},
        layer.record.EXECUTION_ID: {"S": OWNER},
        layer.record.RUN_ID: {"S": ENDED_RUN},
        layer.record.LEASE_EXPIRY: {"N": str(free_at)},
        layer.record.TTL: {"N": str(stopped + 1 + TTL_SECONDS)},
    }
    assert take(OTHER, now=free_at).outcome == layer.vocabulary.Outcome.BUSY
    taken = take(OTHER, now=free_at + 1)
    assert (taken.outcome, _item(dynamodb)[layer.record.EXECUTION_ID]) == (
        layer.vocabulary.Outcome.ACQUIRED,
        {"S": OTHER},
    )  # type: ignore[index]


def test_ending_ownership_of_an_expired_record_holds_the_key_until_free_at(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    now = NOW + TTL_SECONDS + 1  # the old record counts as absent

    assert (
        layer.ending.end_ownership(_store(layer, dynamodb), KEY, layer.ending.Ending(_ended(layer), now + 60), now)
        is None
    )

    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.LEASE_EXPIRY], item[layer.record.TTL]) == (
        {"N": str(now + 60)},
        {"N": str(now + TTL_SECONDS)},
    )
    assert take(OTHER, now=now + 1).outcome == layer.vocabulary.Outcome.BUSY


def test_ending_ownership_cuts_the_lease_of_a_take_that_lands_between_its_two_writes(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    # The release finds no record (its update is refused), then the ended execution's own take lands
    # before the release's put: the put is refused, and the release cuts the new record's lease instead.
    stopped, free_at = NOW, NOW + 60
    release_client = _rival_client()
    _before_first(release_client, "PutItem", lambda: take(OWNER, now=stopped + 1))

    changed = layer.ending.end_ownership(
        _store(layer, release_client), KEY, layer.ending.Ending(_ended(layer), free_at), stopped + 1
    )

    item = _item(dynamodb)
    assert changed is not None and changed.status == layer.vocabulary.Status.IN_PROGRESS
    assert item is not None and item[layer.record.EXECUTION_ID] == {"S": OWNER}
    assert item[layer.record.LEASE_EXPIRY] == {"N": str(free_at)}  # not the take's own lease of LEASE seconds


# --------------------------------------------------------------------------- a take still running after its execution ended
class RecordingRunning:
    """A ``layer.take.RunningCheck`` answering from ``ended`` (the executions that have ended) and remembering whom it was asked about."""

    def __init__(self, *ended: str) -> None:
        self.ended = set(ended)
        self.asked: list[str] = []

    def __call__(self, execution_id: str) -> bool:
        self.asked.append(execution_id)
        return execution_id not in self.ended


def test_a_take_whose_execution_has_ended_takes_back_none_of_its_own_records(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    # What the release leaves for an ended execution that had no record yet: held by it until its calls can have ended.
    free_at = NOW + 2
    _put(
        dynamodb,
        layer,
        layer.vocabulary.Status.IN_PROGRESS,
        **{layer.record.RUN_ID: "", layer.record.LEASE_EXPIRY: free_at},
    )
    before = _item(dynamodb)
    running = RecordingRunning(OWNER)

    with pytest.raises(layer.errors.IdempotencyExecutionEndedError) as refused:
        take(
            OWNER,
            now=free_at + 5,
            liveness=RecordingLiveness(layer.record.Liveness(can_act=False, free_at=free_at)),
            still_running=running,
        )

    assert OWNER in str(refused.value) and KEY in str(refused.value)
    assert running.asked == [OWNER]
    assert _item(dynamodb) == before


def test_a_take_whose_execution_has_ended_takes_over_no_other_ended_holder(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take(OTHER)
    before = _item(dynamodb)
    now = NOW + LEASE + 1

    with pytest.raises(layer.errors.IdempotencyExecutionEndedError):
        take(
            OWNER,
            now=now,
            liveness=RecordingLiveness(layer.record.Liveness(can_act=False)),
            still_running=RecordingRunning(OWNER),
        )

    assert _item(dynamodb) == before


def test_a_failed_record_is_taken_again_only_by_a_running_execution(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    _put(
        dynamodb,
        layer,
        layer.vocabulary.Status.FAILED,
        **{layer.record.EXECUTION_ID: OTHER, layer.record.LEASE_EXPIRY: NOW - 1, layer.record.ERROR: "StepFailed"},
    )
    before = _item(dynamodb)

    with pytest.raises(layer.errors.IdempotencyExecutionEndedError):
        take(OWNER, still_running=RecordingRunning(OWNER))
    assert _item(dynamodb) == before

    running = RecordingRunning()
    assert take(OWNER, still_running=running).outcome == layer.vocabulary.Outcome.ACQUIRED
    assert running.asked == [OWNER]


def test_a_fresh_key_is_taken_without_asking_whether_the_caller_runs(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    running = RecordingRunning(OWNER)

    assert take(OWNER, still_running=running).outcome == layer.vocabulary.Outcome.ACQUIRED
    assert running.asked == []


# --------------------------------------------------------------------------- an ended holder that can still be redriven
def test_an_ended_holder_that_can_still_be_redriven_is_resumed_and_waited_for_not_taken_over(
    layer: SimpleNamespace, take: Any, dynamodb: Any
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
        liveness=RecordingLiveness(layer.record.Liveness(can_act=False, free_at=now - 1, redrivable=True)),
        resume=resume,
    )

    assert (busy.outcome, busy.taken_over, busy.look_again_at) == (layer.vocabulary.Outcome.BUSY, False, now + LEASE)
    assert [holder.execution_id for holder in resumed] == [OWNER]
    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.EXECUTION_ID], item[layer.record.LEASE_EXPIRY]) == ({"S": OWNER}, {"N": str(now + LEASE)})


def test_an_ended_holder_that_can_never_run_again_is_taken_over(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    now = NOW + LEASE + 1

    taken = take(
        OTHER,
        now=now,
        liveness=RecordingLiveness(layer.record.Liveness(can_act=False, free_at=now - 1, redrivable=True)),
        resume=lambda holder: False,
    )

    assert (taken.outcome, taken.taken_over) == (layer.vocabulary.Outcome.ACQUIRED, True)
    item = _item(dynamodb)
    assert item is not None and item[layer.record.EXECUTION_ID] == {"S": OTHER}


def test_a_release_keeps_a_stopped_owners_record_at_least_until_asked(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    take()
    keep_until = NOW + 14 * 24 * 3600

    layer.ending.end_ownership(
        _store(layer, dynamodb),
        KEY,
        layer.ending.Ending(layer.record.Owner(OWNER, RUN, START), NOW + 7, keep_until=keep_until),
        NOW + 5,
    )

    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.LEASE_EXPIRY], item[layer.record.TTL]) == ({"N": str(NOW + 7)}, {"N": str(keep_until)})


# --------------------------------------------------------------------------- a failure the release recorded for an owner that ended unsaved
def _ended_unsaved(layer: SimpleNamespace, dynamodb: Any, take: Any) -> None:
    """OWNER took the record, then ended without saving; its release recorded the failure (quiet until NOW + 7)."""
    take()
    layer.ending.end_ownership(
        _store(layer, dynamodb),
        KEY,
        layer.ending.Ending(
            layer.record.Owner(OWNER, RUN, START), NOW + 7, failure=layer.record.Failure("ThrottlingException", "")
        ),
        NOW + 5,
    )


def test_a_redriven_owner_saves_over_the_failure_its_release_recorded(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    _ended_unsaved(layer, dynamodb, take)

    _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json='{"ok":true}')

    item = _item(dynamodb)
    assert item is not None
    assert (item[layer.record.STATUS], item[layer.record.RESULT]) == (
        {"S": layer.vocabulary.Status.SUCCESS},
        {"S": '{"ok":true}'},
    )
    assert {layer.record.ERROR, layer.record.CAUSE, layer.record.ENDED_UNSAVED, layer.record.LEASE_EXPIRY}.isdisjoint(
        item
    )


def test_a_failure_the_owner_saved_itself_is_never_saved_over(layer: SimpleNamespace, take: Any, dynamodb: Any) -> None:
    take()
    _store(layer, dynamodb).save_outcome(
        KEY, layer.record.Owner(OWNER, RUN), failure=layer.record.Failure("StepFailed", "")
    )

    with pytest.raises(layer.errors.IdempotencyRecordLostError):
        _store(layer, dynamodb).save_outcome(KEY, layer.record.Owner(OWNER, RUN), result_json="1")


def test_a_duplicate_resumes_an_owner_that_ended_unsaved_instead_of_taking_its_failure_over(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    _ended_unsaved(layer, dynamodb, take)
    resumed: list[str] = []

    def resume(holder: Any) -> bool:
        resumed.append(holder.execution_id)
        return True

    busy = take(
        OTHER,
        now=NOW + 8,
        liveness=RecordingLiveness(layer.record.Liveness(can_act=False, free_at=NOW + 7, redrivable=True)),
        resume=resume,
    )

    assert (busy.outcome, busy.wakes_waiters) == (
        layer.vocabulary.Outcome.BUSY,
        False,
    )  # waiters poll: nobody registers on a FAILED record
    assert resumed == [OWNER]
    item = _item(dynamodb)
    assert item is not None and (item[layer.record.STATUS], item[layer.record.EXECUTION_ID]) == (
        {"S": layer.vocabulary.Status.FAILED},
        {"S": OWNER},
    )


def test_a_redriven_owner_takes_back_the_record_its_release_failed(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    _ended_unsaved(layer, dynamodb, take)
    running = RecordingRunning()

    taken = take(OWNER, now=NOW + 6, still_running=running)  # within its own quiet period: it is that owner

    assert taken.outcome == layer.vocabulary.Outcome.ACQUIRED
    assert running.asked == [OWNER]


def test_the_record_a_release_left_for_an_execution_that_never_took_it_is_taken_over_not_resumed(
    layer: SimpleNamespace, take: Any, dynamodb: Any
) -> None:
    layer.ending.end_ownership(
        _store(layer, dynamodb),
        KEY,
        layer.ending.Ending(layer.record.Owner(OWNER, "", START), NOW + 2, keep_until=NOW + 10**6),
        NOW,
    )
    left = _item(dynamodb)
    resumed: list[Any] = []

    taken = take(
        OTHER,
        now=NOW + 3,
        liveness=RecordingLiveness(layer.record.Liveness(can_act=False, free_at=NOW + 2, redrivable=True)),
        resume=resumed.append,
    )

    assert left is not None and left[layer.record.TTL] == {
        "N": str(NOW + TTL_SECONDS)
    }  # its run never began: nothing to keep
    assert (taken.outcome, resumed) == (layer.vocabulary.Outcome.ACQUIRED, [])
