"""The idempotency record in DynamoDB: its attribute names and every read and write the envelope makes.

One item per key (partition key ``id`` = the key) holds the record. An execution waiting for the
record's owner leaves its task token in an item of its own, a *waiter slot*
(``<key>#waiter#<owner tag>#<n>``), so the record never grows with contention and a hit never
reads tokens. Each change of state is one conditional write, so a record is never changed by an
execution that does not own it:

* ``take_record``: a strongly consistent read first (a hit costs one read); then, only when the
  record is free (absent, expired, FAILED and quiet, or held by an owner that can no longer act),
  a conditional put that makes the caller its IN_PROGRESS owner;
* ``extend_lease``: the owner is alive, its lease is extended instead of taken over;
* ``register_waiter``: a waiter takes slot ``n`` (a counter on the record) and writes its token there;
* ``save_outcome``: IN_PROGRESS owned by the caller → SUCCESS (with the result) or FAILED;
* ``end_ownership``: the owner ended without saving (stopped, timed out, failed): its lease is cut
  to when its calls in flight can have finished, and a failure is recorded as FAILED.

A record whose ``ttl`` has passed counts as absent in every condition here, because DynamoDB's
TTL deletion may come days late.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from idempotency.errors import (
    IdempotencyExecutionEndedError,
    IdempotencyPayloadMismatchError,
    IdempotencyRecordLostError,
    IdempotencyRecordStateError,
)
from idempotency.key import mismatch_message

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Attribute names of the record (docs/contract.md, "The record").
ID = "id"
STATUS = "executionstatus"
RESULT = "executionresult"
EXECUTION_ID = "executionid"
# Which run of that execution owns the record: an Express execution may run more than once
# (at-least-once), with the same ARN. The entry time of the execution's first state tells runs apart.
RUN_ID = "runid"
START_TIME = "starttime"
TTL = "ttl"
# Until when the owner is presumed able to act; after it, a look at the record checks on the owner.
LEASE_EXPIRY = "leaseexpiry"
ERROR = "error"
CAUSE = "cause"
# How many waiter slots were handed out while the record was IN_PROGRESS (a number, never tokens).
WAITERS = "waiters"
# Child variant: the child execution the owner starts (it may outlive its parent for a while).
CHILD_EXECUTION = "childexecution"
# SHA-256 of the validated part of the input (payload validation); absent when validation is off.
PAYLOAD_HASH = "payloadhash"
# Set by the release on a failure it recorded for an owner that ended without saving (its save or
# another envelope state kept failing): that owner may still be redriven, and its redriven save
# may then store its outcome over this failure.
ENDED_UNSAVED = "endedunsaved"

# Attribute names of a waiter slot.
TASK_TOKEN = "tasktoken"
WAITING_ON = "waitingon"
WAITER_SLOT_INFIX = "#waiter#"

# Values of STATUS.
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILED = "FAILED"

# What take_record found; the state machine's Choice state branches on these.
ACQUIRED = "ACQUIRED"
COMPLETED = "COMPLETED"
BUSY = "BUSY"
# Only for a waiter whose policy is to fail with the failure it waited for (WaitersOnFailure=Fail).
FAILED_OUTCOME = "FAILED"

# DynamoDB's item limit (UTF-8 bytes of names and values) and the part of it a result may use:
# the result is at most what a state can carry beside the envelope's own fields (see MAX_RESULT_BYTES
# in key.py's budget), far below this, so a record with its result always fits.
MAX_ITEM_BYTES = 400 * 1024
# A cause longer than Step Functions allows (32,768 characters) is cut: it could not be reported anyway.
MAX_CAUSE_CHARS = 32_768
MAX_ERROR_CHARS = 256

# Errors after which a write may or may not have landed: the reply was lost. Writes here are safe
# to repeat (a repeated save finds its own outcome), so they are retried in place.
_LOST_REPLY = (ReadTimeoutError, ConnectTimeoutError, ConnectionClosedError, EndpointConnectionError)
_RETRIED_CODES = (
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
)
_WRITE_ATTEMPTS = 4

_NOT_LIVE = "attribute_not_exists(#id) OR #ttl < :now"
# The record is IN_PROGRESS and owned by the given run of the given execution.
_OWNED = "#status = :in_progress AND #execution_id = :execution_id AND #run_id = :run_id"
# ... or FAILED by its release after it ended unsaved (a redriven owner saving).
_SAVABLE = "(#status = :in_progress OR (#status = :failed AND attribute_exists(#ended))) AND #execution_id = :execution_id AND #run_id = :run_id"
# ... and live (a waiter registering on it).
_HELD_BY = f"{_OWNED} AND #ttl >= :now"

_NAMES = {
    "#id": ID,
    "#ttl": TTL,
    "#status": STATUS,
    "#lease": LEASE_EXPIRY,
    "#execution_id": EXECUTION_ID,
    "#run_id": RUN_ID,
    "#result": RESULT,
    "#error": ERROR,
    "#cause": CAUSE,
    "#waiters": WAITERS,
    "#ended": ENDED_UNSAVED,
}


def _names(expression: str) -> dict[str, str]:
    """The ``ExpressionAttributeNames`` an expression uses (DynamoDB rejects unused ones)."""
    return {placeholder: name for placeholder, name in _NAMES.items() if placeholder in expression}


@dataclass(frozen=True)
class Owner:
    """The execution (and which run of it) that takes the record."""

    execution_id: str
    start_time: str
    run_id: str


@dataclass(frozen=True)
class Holder:
    """The execution a record is held by, as a look at the record found it."""

    execution_id: str
    run_id: str
    lease_expiry: int
    child_execution: str | None = None

    @property
    def tag(self) -> str:
        return owner_tag(self.execution_id, self.run_id)


@dataclass(frozen=True)
class Liveness:
    """Whether a holder can still act (it or a call it started still runs), and if not, from when its key is free.

    ``redrivable``: the holder ended but Step Functions can still redrive it (a Standard execution
    that failed, was stopped or timed out, less than 14 days ago). A redrive would continue its
    steps, so its record is never taken over: it is resumed instead (``ResumeHolder``).
    """

    can_act: bool
    free_at: int = 0
    redrivable: bool = False


# Decides whether the holder of an expired lease can still act (asks Step Functions). None: lease only.
LivenessCheck = Callable[[Holder, int], Liveness]
# Whether an execution still runs (asks Step Functions; a doubt counts as running).
RunningCheck = Callable[[str], bool]
# Redrives an ended holder that can still be redriven (RedriveExecution): True when it runs again
# (by this call or another), False when it can never run again (then its record may be taken over).
ResumeHolder = Callable[[Holder], bool]


@dataclass(frozen=True)
class LockOutcome:
    """What happened when an execution tried to take the record of ``key``."""

    outcome: str
    key: str
    result: Any = None
    holder: Holder | None = None
    error: str | None = None
    cause: str | None = None
    # A BUSY record held under a lease that says when to look again at the latest (epoch seconds).
    look_again_at: int | None = None
    taken_over: bool = False
    # BUSY on an IN_PROGRESS record: its owner (or the release) wakes waiters. A FAILED record whose
    # owner's calls may still run is BUSY too, but nobody will wake anyone: its waiters poll.
    wakes_waiters: bool = True

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {"outcome": self.outcome, "key": self.key}
        if self.outcome == BUSY and self.holder is not None:
            output.update(heldBy=self.holder.execution_id, heldByRun=self.holder.run_id)
        if self.outcome == FAILED_OUTCOME:
            output.update(error=self.error, cause=self.cause)
        return output


@dataclass(frozen=True)
class SavedOutcome:
    """A record just saved (or released), with what its waiters need: where their slots are and how many."""

    key: str
    status: str
    owner_tag: str
    waiter_count: int


def owner_tag(execution_id: str, run_id: str) -> str:
    """A short name for one run of an owner, under which its waiters' slots are written."""
    return hashlib.sha256(f"{execution_id}\n{run_id}".encode()).hexdigest()[:16]


def waiter_slot_id(key: str, tag: str, number: int) -> str:
    return f"{key}{WAITER_SLOT_INFIX}{tag}#{number}"


def encode_result(result: Any) -> str:
    """The stored form of a result: compact JSON as UTF-8 text (not ASCII escapes, which may take six times the bytes)."""
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- reading
def read_record(client: DynamoDBClient, table_name: str, key: str) -> dict[str, Any] | None:
    """The record of ``key`` by a strongly consistent read (billed 1 RRU per 4 KB), or None."""
    item: dict[str, Any] | None = _with_retries(
        lambda: client.get_item(TableName=table_name, Key={ID: {"S": key}}, ConsistentRead=True)
    ).get("Item")
    return item


def _live(item: dict[str, Any] | None, now: int) -> dict[str, Any] | None:
    if item is None or int(item.get(TTL, {}).get("N", "0")) < now:
        return None
    return item


def _holder(item: dict[str, Any]) -> Holder:
    return Holder(
        execution_id=item.get(EXECUTION_ID, {}).get("S", ""),
        run_id=item.get(RUN_ID, {}).get("S", ""),
        lease_expiry=int(item.get(LEASE_EXPIRY, {}).get("N", "0")),
        child_execution=item.get(CHILD_EXECUTION, {}).get("S"),
    )


# --------------------------------------------------------------------------- taking
def take_record(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner: Owner,
    now: int,
    record_ttl_seconds: int,
    lease_seconds: int,
    *,
    may_take_failed: bool = True,
    reported_errors: Collection[str] = (),
    payload_hash: str | None = None,
    child_execution: str | None = None,
    liveness: LivenessCheck | None = None,
    still_running: RunningCheck | None = None,
    resume: ResumeHolder | None = None,
) -> LockOutcome:
    """Look at the record of ``key`` and take it as IN_PROGRESS if it is free.

    A strongly consistent read answers a hit (``COMPLETED``) and a record held by a live owner
    (``BUSY``) without any write. Only a free record is written, by a put conditional on the
    record still being what the read found; if another execution won the race, the item
    returned with the refusal is looked at instead. An expired lease is taken over only when
    ``liveness`` says its holder can no longer act (without ``liveness``, an Express workflow,
    the lease alone decides); a live holder's lease is extended.

    A record that exists is only replaced by an execution ``still_running`` says runs: a take
    still running after its own execution ended (a Lambda call outlives a stop) would otherwise
    take the record back for an execution that will never save, once the record its release left
    has gone quiet. A fresh key needs no such look: that release, which comes after the end,
    finds the late take's record and cuts it, or leaves a record of its own first.

    A holder that ended but can still be redriven is never taken over: any redrive, by an
    operator or not, would continue its steps beside the new owner's. Once its calls can have
    ended, ``resume`` redrives it instead, and the caller waits for it like any live holder
    (its lease is extended); the record changes owner only once the holder can never run again.

    Raises:
        IdempotencyExecutionEndedError: the caller's execution has ended; nothing was written.
        IdempotencyPayloadMismatchError: the record was written for another payload with this key.
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    item = _live(read_record(client, table_name, key), now)
    for _ in range(3):
        decision = _decide(key, item, owner, now, may_take_failed, reported_errors, payload_hash, liveness)
        if isinstance(decision, _Resumable):
            if resume is None or not resume(decision.holder):
                decision = decision.put  # it can never run again: taken over
            else:
                # Running again: waited for, its lease extended. Waiters register only on an IN_PROGRESS record; on a
                # failure it will save over, they poll.
                in_progress = item is not None and item.get(STATUS, {}).get("S") == IN_PROGRESS
                decision = LockOutcome(BUSY, key, holder=decision.holder, wakes_waiters=in_progress)
        if isinstance(decision, LockOutcome):
            if decision.outcome == BUSY and decision.look_again_at is None and item is not None:
                extended = extend_lease(client, table_name, key, item, now + lease_seconds)
                if extended is not None:  # the holder changed meanwhile: look at what is there now
                    item = _live(extended, now)
                    continue
                return LockOutcome(
                    BUSY,
                    key,
                    holder=decision.holder,
                    look_again_at=now + lease_seconds,
                    wakes_waiters=decision.wakes_waiters,
                )
            return decision
        condition, values = decision
        if item is not None and still_running is not None and not still_running(owner.execution_id):
            raise IdempotencyExecutionEndedError(
                f"Execution {owner.execution_id} had ended when its take of record {key} ran: nothing was written."
            )
        refused = _put_owned_record(
            client,
            table_name,
            key,
            owner,
            now,
            record_ttl_seconds,
            lease_seconds,
            condition,
            values,
            payload_hash,
            child_execution,
        )
        if refused is None:
            taken_over = (
                item is not None
                and item.get(STATUS, {}).get("S") == IN_PROGRESS
                and _holder(item).execution_id != owner.execution_id
            )
            return LockOutcome(ACQUIRED, key, taken_over=taken_over)
        item = _live(refused, now)
    # Three races lost in a row: someone else keeps changing the record; wait like any waiter.
    return LockOutcome(BUSY, key, holder=_holder(item) if item else None, look_again_at=now + 1)


# A put to make: its condition and values.
_Put = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class _Resumable:
    """An ended holder that can still be redriven: resumed if possible, else its record is taken with ``put``."""

    holder: Holder
    put: _Put


def _decide(
    key: str,
    item: dict[str, Any] | None,
    owner: Owner,
    now: int,
    may_take_failed: bool,
    reported_errors: Collection[str],
    payload_hash: str | None,
    liveness: LivenessCheck | None,
) -> LockOutcome | _Put | _Resumable:
    now_value = {":now": {"N": str(now)}}
    if item is None:
        return _NOT_LIVE, now_value
    status = _known_status(key, item)
    completed = _completed(key, item, payload_hash)
    if completed is not None:
        return completed
    still_so, same_holder = _unchanged(item)
    look = _Look(
        key, item, _holder(item), owner, now, liveness, (f"{_NOT_LIVE} OR ({still_so})", {**now_value, **same_holder})
    )
    if status == FAILED:
        return _decide_on_failed(look, may_take_failed, reported_errors)
    return _decide_on_held(look)


@dataclass(frozen=True)
class _Look:
    """One look at a live record that holds no result yet, by an execution that would take it."""

    key: str
    item: dict[str, Any]
    holder: Holder
    owner: Owner
    now: int
    liveness: LivenessCheck | None
    # The put that takes the record while it is still exactly as this look read it.
    take: _Put


def _decide_on_failed(
    look: _Look, may_take_failed: bool, reported_errors: Collection[str]
) -> LockOutcome | _Put | _Resumable:
    holder, item = look.holder, look.item
    error = item.get(ERROR, {}).get("S", "States.TaskFailed")
    if not may_take_failed or error in reported_errors:
        return LockOutcome(FAILED_OUTCOME, look.key, holder=holder, error=error, cause=item.get(CAUSE, {}).get("S", ""))
    ended_unsaved = ENDED_UNSAVED in item
    if ended_unsaved and holder.execution_id == look.owner.execution_id:
        return look.take  # that owner itself, redriven: it takes its record back (if it runs: take_record asks)
    if holder.lease_expiry >= look.now:
        # The failed owner's other calls may still run (a Parallel's branches): not yet.
        return LockOutcome(BUSY, look.key, holder=holder, look_again_at=holder.lease_expiry + 1, wakes_waiters=False)
    if ended_unsaved and look.liveness is not None:
        # Its steps may have run; a redrive would continue it: resumed rather than run again.
        state = look.liveness(holder, look.now)
        if state.can_act:
            return LockOutcome(BUSY, look.key, holder=holder, wakes_waiters=False)  # redriven already: waited for
        if state.redrivable:
            return _Resumable(holder, look.take)
    return look.take


def _decide_on_held(look: _Look) -> LockOutcome | _Put | _Resumable:
    holder, owner, now = look.holder, look.owner, look.now
    if holder.execution_id == owner.execution_id and (holder.run_id == owner.run_id or look.liveness is not None):
        # A retried invocation whose first attempt took the record but lost the reply; or (Standard, which
        # runs one run at a time) the record its release left, found by that execution redriven.
        return look.take
    if holder.lease_expiry >= now:
        return LockOutcome(BUSY, look.key, holder=holder, look_again_at=holder.lease_expiry + 1)
    if look.liveness is None:
        return look.take
    state = look.liveness(holder, now)
    if state.can_act:
        return LockOutcome(BUSY, look.key, holder=holder)  # take_record extends the lease
    if state.free_at > now:
        return LockOutcome(BUSY, look.key, holder=holder, look_again_at=state.free_at + 1)
    if state.redrivable and holder.run_id:  # no run: the record its release left for it, which it never took
        return _Resumable(holder, look.take)
    return look.take


def _completed(key: str, item: dict[str, Any], payload_hash: str | None) -> LockOutcome | None:
    """A live record's stored result (``COMPLETED``), or None when it holds none yet (IN_PROGRESS, FAILED).

    Raises:
        IdempotencyPayloadMismatchError: a SUCCESS or IN_PROGRESS record was written for another payload.
        IdempotencyRecordStateError: a SUCCESS record without its result.
    """
    status = item.get(STATUS, {}).get("S")
    if status in (SUCCESS, IN_PROGRESS):
        _check_payload(key, item, payload_hash)
    if status != SUCCESS:
        return None
    if RESULT not in item:
        raise IdempotencyRecordStateError(f"Record {key} is {SUCCESS} but has no {RESULT}.")
    return LockOutcome(COMPLETED, key, result=json.loads(item[RESULT]["S"]))


def stored_result(
    client: DynamoDBClient, table_name: str, key: str, now: int, payload_hash: str | None
) -> LockOutcome | None:
    """The stored result of ``key`` if its record is live and SUCCESS (``COMPLETED``), by one strongly
    consistent read and no write; None when the record is absent, expired, IN_PROGRESS or FAILED.

    The same reading of a record as ``take_record``'s (TTL, payload validation, states), for callers
    that answer a repeat without taking anything (the front door).

    Raises:
        IdempotencyPayloadMismatchError: the record was written for another payload with this key.
        IdempotencyRecordStateError: the stored record is in no state the envelope knows.
    """
    item = _live(read_record(client, table_name, key), now)
    if item is None:
        return None
    _known_status(key, item)
    return _completed(key, item, payload_hash)


def _known_status(key: str, item: dict[str, Any]) -> str:
    status = item.get(STATUS, {}).get("S")
    if status not in (SUCCESS, IN_PROGRESS, FAILED):
        raise IdempotencyRecordStateError(
            f"Record {key} has {STATUS}={status!r}; expected {IN_PROGRESS}, {SUCCESS} or {FAILED}."
        )
    return str(status)


def _unchanged(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A condition that holds while the record is still exactly as ``item`` (status, owner, run, lease), with its values."""
    parts = ["#status = :seen_status", "#execution_id = :execution_id"]
    values: dict[str, Any] = {":seen_status": item[STATUS], ":execution_id": item.get(EXECUTION_ID, {"S": ""})}
    for placeholder, name, value in (("#run_id", RUN_ID, ":run_id"), ("#lease", LEASE_EXPIRY, ":lease")):
        if name in item:
            parts.append(f"{placeholder} = {value}")
            values[value] = item[name]
        else:
            parts.append(f"attribute_not_exists({placeholder})")
    return " AND ".join(parts), values


def _check_payload(key: str, item: dict[str, Any], payload_hash: str | None) -> None:
    # A record written without a hash (validation off then, or an earlier version) is never compared.
    stored = item.get(PAYLOAD_HASH, {}).get("S")
    if payload_hash is not None and stored is not None and stored != payload_hash:
        raise IdempotencyPayloadMismatchError(mismatch_message(key))


def _put_owned_record(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner: Owner,
    now: int,
    record_ttl_seconds: int,
    lease_seconds: int,
    condition: str,
    values: dict[str, Any],
    payload_hash: str | None,
    child_execution: str | None,
) -> dict[str, Any] | None:
    """Put the caller's IN_PROGRESS record under ``condition``; None when it landed, else the item that refused it."""
    item = _in_progress_item(key, owner, ttl=now + record_ttl_seconds, lease_expiry=now + lease_seconds)
    if payload_hash is not None:
        item[PAYLOAD_HASH] = {"S": payload_hash}
    if child_execution is not None:
        item[CHILD_EXECUTION] = {"S": child_execution}
    try:
        _with_retries(
            lambda: client.put_item(
                TableName=table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(condition),
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return _item_of_refusal(refused) or {}
    return None


def extend_lease(
    client: DynamoDBClient, table_name: str, key: str, item: dict[str, Any], lease_expiry: int
) -> dict[str, Any] | None:
    """Extend the lease of a holder found alive, if the record is still as ``item``. None when extended; else the record now."""
    condition, values = _unchanged(item)
    try:
        _with_retries(
            lambda: client.update_item(
                TableName=table_name,
                Key={ID: {"S": key}},
                UpdateExpression="SET #lease = :new_lease",
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(condition + "#lease"),
                ExpressionAttributeValues={**values, ":new_lease": {"N": str(lease_expiry)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return _item_of_refusal(refused) or {ID: {"S": key}, TTL: {"N": "0"}}
    return None


# --------------------------------------------------------------------------- waiting
def register_waiter(
    client: DynamoDBClient, table_name: str, key: str, holder: Holder, task_token: str, now: int, slot_ttl: int
) -> bool:
    """Leave a waiter's task token in a slot of its own, so the record's owner wakes it when it saves.

    The slot's number comes from a counter on the record, incremented under the condition that
    the record is still the live IN_PROGRESS record of ``holder`` (the record stays small: the
    increment costs one write unit whatever the number of waiters). Returns False when the
    record changed since the waiter looked (saved, released, taken over, expired): nobody would
    wake that token, so the waiter should look again now.
    """
    # A record written without a run id (by hand, or by an earlier version) is held by the execution alone.
    condition = (
        _HELD_BY
        if holder.run_id
        else _HELD_BY.replace("#run_id = :run_id", "(attribute_not_exists(#run_id) OR #run_id = :run_id)")
    )
    run_value = {":run_id": {"S": holder.run_id}}
    try:
        response = _with_retries(
            lambda: client.update_item(
                TableName=table_name,
                Key={ID: {"S": key}},
                UpdateExpression="ADD #waiters :one",
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(condition + "#waiters"),
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":in_progress": {"S": IN_PROGRESS},
                    ":execution_id": {"S": holder.execution_id},
                    ":now": {"N": str(now)},
                    **run_value,
                },
                ReturnValues="UPDATED_NEW",
            )
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    number = int(response["Attributes"][WAITERS]["N"])
    _with_retries(
        lambda: client.put_item(
            TableName=table_name,
            Item={
                ID: {"S": waiter_slot_id(key, holder.tag, number)},
                TASK_TOKEN: {"S": task_token},
                WAITING_ON: {"S": holder.execution_id},
                TTL: {"N": str(slot_ttl)},
            },
        )
    )
    return True


def waiter_tokens(
    client: DynamoDBClient, table_name: str, saved: SavedOutcome, *, settle_seconds: Sequence[float] = (0.05, 0.2, 0.5)
) -> dict[str, str]:
    """The task tokens in the waiter slots of ``saved`` (slot id -> token), by strongly consistent reads.

    A waiter counted on the record writes its slot right after: a slot not there yet is read
    again after each of ``settle_seconds``, then left (that waiter finds the outcome on its own
    when its wait for a wake-up times out).
    """
    missing = [waiter_slot_id(saved.key, saved.owner_tag, number) for number in range(1, saved.waiter_count + 1)]
    tokens: dict[str, str] = {}
    for pause in (0.0, *settle_seconds):
        if not missing:
            break
        time.sleep(pause)
        for slot_id, item in _batch_get(client, table_name, missing):
            tokens[slot_id] = item[TASK_TOKEN]["S"]
        missing = [slot_id for slot_id in missing if slot_id not in tokens]
    return tokens


def clear_waiter_slots(client: DynamoDBClient, table_name: str, slot_ids: Sequence[str]) -> None:
    """Delete waiter slots whose tokens were sent (a later save must not find them again)."""
    for chunk in _chunks(list(slot_ids), 25):
        requests: dict[str, Any] = {table_name: [{"DeleteRequest": {"Key": {ID: {"S": slot_id}}}} for slot_id in chunk]}
        for attempt in range(_WRITE_ATTEMPTS):
            unprocessed = (
                _with_retries(functools.partial(client.batch_write_item, RequestItems=requests)).get("UnprocessedItems")
                or {}
            )
            if not unprocessed:
                break
            requests = unprocessed
            time.sleep(0.05 * 2**attempt)


def _batch_get(
    client: DynamoDBClient, table_name: str, slot_ids: Sequence[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for chunk in _chunks(list(slot_ids), 100):
        request: dict[str, Any] = {
            table_name: {"Keys": [{ID: {"S": slot_id}} for slot_id in chunk], "ConsistentRead": True}
        }
        for attempt in range(_WRITE_ATTEMPTS):
            response = _with_retries(functools.partial(client.batch_get_item, RequestItems=request))
            for item in response.get("Responses", {}).get(table_name, []):
                yield item[ID]["S"], item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * 2**attempt)


# --------------------------------------------------------------------------- saving
def save_outcome(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner_execution_id: str,
    run_id: str,
    *,
    result_json: str | None = None,
    error: str | None = None,
    cause: str | None = None,
    quiet_until: int | None = None,
) -> SavedOutcome:
    """Store SUCCESS with ``result_json`` (or FAILED with ``error`` and ``cause``) if the caller still owns the record.

    The write is conditional on the record being IN_PROGRESS and owned by this run of
    ``owner_execution_id``, so an owner that lost the record cannot overwrite a newer owner's,
    and a save never creates a record. A reply lost on the way is retried; saving again what the
    same owner already saved succeeds, so a retried invocation is harmless. A FAILED record is
    not taken again before ``quiet_until``: the failed steps' other calls may still run. A failure
    the release recorded after this owner ended unsaved is overwritten: the owner was redriven.

    Raises:
        IdempotencyRecordLostError: another execution owns the record now, or it is gone.
    """
    if error is None:
        status = SUCCESS
        update = "SET #status = :status, #result = :result REMOVE #lease, #ended, #error, #cause"
        values: dict[str, Any] = {
            ":status": {"S": SUCCESS},
            ":result": {"S": result_json if result_json is not None else "null"},
        }
    else:
        status = FAILED
        update = "SET #status = :status, #error = :error, #cause = :cause"
        values = {":status": {"S": FAILED}, **_failure_values(error, cause)}
        if quiet_until is not None:
            update += ", #lease = :quiet_until REMOVE #ended"
            values[":quiet_until"] = {"N": str(quiet_until)}
        else:
            update += " REMOVE #lease, #ended"
    owned = {
        ":in_progress": {"S": IN_PROGRESS},
        ":failed": {"S": FAILED},
        ":execution_id": {"S": owner_execution_id},
        ":run_id": {"S": run_id},
    }
    item, landed = _update_if(client, table_name, key, update, _SAVABLE, {**values, **owned})
    if not landed:
        already_saved = (
            item.get(EXECUTION_ID, {}).get("S") == owner_execution_id
            and item.get(RUN_ID, {}).get("S") == run_id
            and item.get(STATUS, {}).get("S") == status
        )
        if not already_saved:
            raise IdempotencyRecordLostError(
                f"Record {key} is no longer IN_PROGRESS and owned by {owner_execution_id} "
                f"(now {item.get(STATUS, {}).get('S', 'absent')}, owned by {item.get(EXECUTION_ID, {}).get('S')}); "
                "another execution took it over after this one could no longer be seen running, or it was released. "
                "This execution's outcome was not stored."
            )
    return SavedOutcome(
        key=key, status=status, owner_tag=owner_tag(owner_execution_id, run_id), waiter_count=_waiter_count(item)
    )


# --------------------------------------------------------------------------- an owner that ended without saving
def end_ownership(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    ended: Owner,
    now: int,
    free_at: int,
    record_ttl_seconds: int,
    *,
    error: str | None = None,
    cause: str | None = None,
    keep_until: int = 0,
) -> SavedOutcome | None:
    """Mark that ``ended`` (an execution that stopped, timed out or failed) will not save: its key is free at ``free_at``.

    Never a delete: the ended execution's calls in flight (a Lambda invocation, a child
    execution) may still run until then. If ``ended`` holds the record, its lease is cut to
    ``free_at`` (with ``error``, the record becomes FAILED, as the contract says a failure is
    recorded). If there is no live record at all, the ended execution may still have a take in
    flight that lands later: a record held by it until ``free_at`` is put first, so that take is
    refused instead of leaving the key blocked. Returns what changed (for its waiters), or None
    when the record is saved or held by another execution: then nothing changes.

    A record ``ended`` held lives at least until ``keep_until`` (its ``ttl`` is raised to it, never
    lowered): an ended execution Step Functions can still redrive keeps its record, so a redrive
    finds it and a later execution resumes it rather than starting the key afresh.
    """
    run_id_condition = "#execution_id = :execution_id AND #status = :in_progress"
    if error is None:
        update = "SET #lease = :free_at"
        values: dict[str, Any] = {":free_at": {"N": str(free_at)}}
    else:
        update = "SET #lease = :free_at, #status = :failed, #error = :error, #cause = :cause, #ended = :ended"
        values = {
            ":free_at": {"N": str(free_at)},
            ":failed": {"S": FAILED},
            ":ended": {"BOOL": True},
            **_failure_values(error, cause),
        }
    condition = f"{run_id_condition} AND #ttl >= :now"
    held = {":execution_id": {"S": ended.execution_id}, ":in_progress": {"S": IN_PROGRESS}, ":now": {"N": str(now)}}
    for _ in range(3):
        item, landed = _update_if(client, table_name, key, update, condition, {**values, **held})
        if landed:
            if int(item.get(TTL, {}).get("N", "0")) < keep_until:
                item, _ = _update_if(
                    client,
                    table_name,
                    key,
                    "SET #ttl = :keep_until",
                    condition,
                    {**held, ":keep_until": {"N": str(keep_until)}},
                )
            break
        if _live(item or None, now) is not None:
            return None  # saved, or held by another execution: not ours to change
        # Only for its take in flight: it never held the record, so it has no run to resume.
        if _put_record_of_ended_owner(client, table_name, key, ended, now, free_at, now + record_ttl_seconds):
            return None
        # A record appeared between the two writes (the ended execution's own take, landing late):
        # look again, so its lease is cut too.
    else:
        return None
    return waiters_of(item)


def _put_record_of_ended_owner(
    client: DynamoDBClient, table_name: str, key: str, ended: Owner, now: int, free_at: int, ttl: int
) -> bool:
    """Put a record held by ``ended`` until ``free_at`` if there is none; False when one appeared meanwhile."""
    try:
        _with_retries(
            lambda: client.put_item(
                TableName=table_name,
                Item=_in_progress_item(key, ended, ttl=ttl, lease_expiry=free_at),
                ConditionExpression=_NOT_LIVE,
                ExpressionAttributeNames=_names(_NOT_LIVE),
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


# --------------------------------------------------------------------------- helpers
def _in_progress_item(key: str, owner: Owner, ttl: int, lease_expiry: int) -> dict[str, Any]:
    """A record held IN_PROGRESS by ``owner``, with no waiter yet."""
    return {
        ID: {"S": key},
        STATUS: {"S": IN_PROGRESS},
        EXECUTION_ID: {"S": owner.execution_id},
        RUN_ID: {"S": owner.run_id},
        START_TIME: {"S": owner.start_time},
        TTL: {"N": str(ttl)},
        LEASE_EXPIRY: {"N": str(lease_expiry)},
        WAITERS: {"N": "0"},
    }


def _update_if(
    client: DynamoDBClient, table_name: str, key: str, update: str, condition: str, values: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """A conditional update of the record: (the record after it, True), or (the record that refused it, False)."""
    try:
        response = _with_retries(
            lambda: client.update_item(
                TableName=table_name,
                Key={ID: {"S": key}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(update + condition),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return _item_of_refusal(refused) or {}, False
    return response["Attributes"], True


def _failure_values(error: str, cause: str | None) -> dict[str, Any]:
    """A failure's error and cause as stored: cut to what Step Functions itself allows."""
    return {":error": {"S": error[:MAX_ERROR_CHARS]}, ":cause": {"S": (cause or "")[:MAX_CAUSE_CHARS]}}


def _with_retries(call: Callable[[], Any]) -> Any:
    """Make a DynamoDB request, again after a lost reply or a throttle (each request here is safe to repeat)."""
    for attempt in range(_WRITE_ATTEMPTS):
        try:
            return call()
        except _LOST_REPLY:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _RETRIED_CODES or attempt == _WRITE_ATTEMPTS - 1:
                raise
        time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _item_of_refusal(refused: Exception) -> dict[str, Any] | None:
    """The item DynamoDB returned with a refused condition (``ReturnValuesOnConditionCheckFailure``)."""
    item = getattr(refused, "response", {}).get("Item")
    return item if isinstance(item, dict) else None


def _waiter_count(item: dict[str, Any]) -> int:
    return int(item.get(WAITERS, {}).get("N", "0"))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------- for the operators' records tool
def is_waiter_slot(item_id: str) -> bool:
    """Whether an item of the table is a waiter slot (``<key>#waiter#<owner tag>#<n>``) rather than a record."""
    return WAITER_SLOT_INFIX in item_id


def record_id_of_waiter_slot(slot_id: str) -> str:
    """The id of the record a waiter slot belongs to: the part of its id before ``#waiter#``."""
    return slot_id.split(WAITER_SLOT_INFIX, 1)[0]


def waiters_of(item: dict[str, Any]) -> SavedOutcome:
    """A record item (DynamoDB form) as the wake-up code takes it: its status, and where and how many its waiter slots are.

    The slots are those handed out under the record's current holder (``waiter_slot_id(key, tag, n)``
    for n = 1 .. ``waiters``); ``wakeup.wake_waiters`` reads, wakes and clears them.
    """
    return SavedOutcome(
        key=item[ID]["S"],
        status=item.get(STATUS, {}).get("S", ""),
        owner_tag=owner_tag(item.get(EXECUTION_ID, {}).get("S", ""), item.get(RUN_ID, {}).get("S", "")),
        waiter_count=_waiter_count(item),
    )
