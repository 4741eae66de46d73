"""The idempotency record in DynamoDB: its attribute names and every write the envelope makes.

One item per key (partition key ``id``). Each change of state is one conditional write, so a
record is never changed by an execution that does not own it:

* ``acquire_lock``: absent, expired, FAILED or lease-expired → IN_PROGRESS, owned by the caller;
* ``register_waiter``: an execution waiting on an IN_PROGRESS record leaves its task token;
* ``save_outcome``: IN_PROGRESS owned by the caller → SUCCESS (with the result) or FAILED;
* ``release_record``: IN_PROGRESS owned by a given execution → absent (the owner ended early).

A record whose ``ttl`` has passed counts as absent in every condition here, because DynamoDB's
TTL deletion may come days late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from idempotency.errors import IdempotencyRecordLostError, IdempotencyRecordStateError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Attribute names (see CONTRACT: "The record").
ID = "id"
STATUS = "executionstatus"
RESULT = "executionresult"
EXECUTION_ID = "executionid"
# Which run of that execution owns the record: an Express execution may run more than once
# (at-least-once), with the same ARN. The entry time of the execution's first state tells runs apart.
RUN_ID = "runid"
START_TIME = "starttime"
TTL = "ttl"
LEASE_EXPIRY = "leaseexpiry"
ERROR = "error"
CAUSE = "cause"
# Map of execution ARN -> task token of the executions waiting for this record's owner.
WAITERS = "waiters"

# Values of STATUS.
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILED = "FAILED"

# What acquire_lock found; the state machine's Choice state branches on these.
ACQUIRED = "ACQUIRED"
COMPLETED = "COMPLETED"
BUSY = "BUSY"
# Only for a waiter whose policy is to fail with the failure it waited for (WaitersOnFailure=Fail).
FAILED_OUTCOME = "FAILED"

# The record may be taken when it is absent, expired, held under an expired lease, or already ours
# (a retried invocation whose first attempt wrote the record but lost the reply) ...
_TAKE_CONDITION = (
    "attribute_not_exists(#id) OR #ttl < :now"
    " OR (#status = :in_progress AND (#lease < :now OR (#execution_id = :execution_id AND #run_id = :run_id)))"
)
# ... and, unless the caller must report it instead, when it is FAILED.
_TAKE_FAILED_CONDITION = f"{_TAKE_CONDITION} OR #status = :failed"
# The record is IN_PROGRESS and owned by the given execution (its save and its release) ...
_OWNED_CONDITION = "#status = :in_progress AND #execution_id = :execution_id"
# ... and live (a waiter registering on it).
_HELD_BY_CONDITION = f"{_OWNED_CONDITION} AND #ttl >= :now"

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
class LockOutcome:
    """What happened when an execution tried to take the record of ``key``."""

    outcome: str
    key: str
    result: Any = None
    held_by: str | None = None
    error: str | None = None
    cause: str | None = None

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {"outcome": self.outcome, "key": self.key}
        if self.outcome == COMPLETED:
            output["result"] = self.result
        if self.outcome == BUSY:
            output["heldBy"] = self.held_by
        if self.outcome == FAILED_OUTCOME:
            output.update(error=self.error, cause=self.cause)
        return output


@dataclass(frozen=True)
class SavedOutcome:
    """A record just saved as SUCCESS or FAILED, with the task tokens of the executions to wake."""

    key: str
    status: str
    waiters: dict[str, str] = field(default_factory=dict)


def acquire_lock(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner: Owner,
    now: int,
    record_ttl_seconds: int,
    lease_seconds: int,
    may_take_failed: bool = True,
) -> LockOutcome:
    """Take the record of ``key`` as IN_PROGRESS with one conditional write.

    When the write is refused, the item DynamoDB returns with the refusal (read under the same
    condition check, so strongly consistent) tells whether the work is done or still running.
    With ``may_take_failed=False`` a FAILED record is reported (``FAILED``) instead of taken.
    """
    condition = _TAKE_FAILED_CONDITION if may_take_failed else _TAKE_CONDITION
    values = {
        ":now": {"N": str(now)},
        ":in_progress": {"S": IN_PROGRESS},
        ":execution_id": {"S": owner.execution_id},
        ":run_id": {"S": owner.run_id},
    }
    if may_take_failed:
        values[":failed"] = {"S": FAILED}
    try:
        client.put_item(
            TableName=table_name,
            Item={
                ID: {"S": key},
                STATUS: {"S": IN_PROGRESS},
                EXECUTION_ID: {"S": owner.execution_id},
                RUN_ID: {"S": owner.run_id},
                START_TIME: {"S": owner.start_time},
                TTL: {"N": str(now + record_ttl_seconds)},
                LEASE_EXPIRY: {"N": str(now + lease_seconds)},
                WAITERS: {"M": {}},
            },
            ConditionExpression=condition,
            ExpressionAttributeNames=_names(condition),
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return _outcome_of_refusal(key, _item_of_refusal(refused))
    return LockOutcome(outcome=ACQUIRED, key=key)


def _outcome_of_refusal(key: str, item: dict[str, Any] | None) -> LockOutcome:
    if item is None:
        raise IdempotencyRecordStateError(f"DynamoDB refused to take record {key} but returned no item.")
    status = item.get(STATUS, {}).get("S")
    if status == SUCCESS:
        if RESULT not in item:
            raise IdempotencyRecordStateError(f"Record {key} is {SUCCESS} but has no {RESULT}.")
        return LockOutcome(outcome=COMPLETED, key=key, result=json.loads(item[RESULT]["S"]))
    if status == IN_PROGRESS:
        return LockOutcome(outcome=BUSY, key=key, held_by=item.get(EXECUTION_ID, {}).get("S"))
    if status == FAILED:
        return LockOutcome(
            outcome=FAILED_OUTCOME,
            key=key,
            held_by=item.get(EXECUTION_ID, {}).get("S"),
            error=item.get(ERROR, {}).get("S", "States.TaskFailed"),
            cause=item.get(CAUSE, {}).get("S", ""),
        )
    raise IdempotencyRecordStateError(
        f"Record {key} has {STATUS}={status!r}; expected {IN_PROGRESS}, {SUCCESS} or {FAILED}."
    )


def register_waiter(
    client: DynamoDBClient, table_name: str, key: str, held_by: str, waiter: str, task_token: str, now: int
) -> bool:
    """Leave ``waiter``'s task token on the record, so its owner wakes it when it saves.

    Returns False when the record is no longer the live IN_PROGRESS record of ``held_by`` (it was
    saved, released, taken over or expired meanwhile): the waiter should look at it again now.
    One entry per waiter, so a waiter that registers again replaces its old token.
    """
    held = {":in_progress": {"S": IN_PROGRESS}, ":execution_id": {"S": held_by}, ":now": {"N": str(now)}}
    try:
        try:
            client.update_item(
                TableName=table_name,
                Key={ID: {"S": key}},
                UpdateExpression="SET #waiters.#waiter = :token",
                ConditionExpression=_HELD_BY_CONDITION,
                ExpressionAttributeNames={**_names(_HELD_BY_CONDITION), "#waiters": WAITERS, "#waiter": waiter},
                ExpressionAttributeValues={**held, ":token": {"S": task_token}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            # A record without the waiters map (written by an earlier version): create it.
            condition = f"{_HELD_BY_CONDITION} AND attribute_not_exists(#waiters)"
            client.update_item(
                TableName=table_name,
                Key={ID: {"S": key}},
                UpdateExpression="SET #waiters = :waiters",
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(condition),
                ExpressionAttributeValues={**held, ":waiters": {"M": {waiter: {"S": task_token}}}},
            )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def save_outcome(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner_execution_id: str,
    run_id: str,
    *,
    result: Any = None,
    error: str | None = None,
    cause: str | None = None,
) -> SavedOutcome:
    """Store SUCCESS with ``result`` (or FAILED with ``error`` and ``cause``) if the caller still owns the record.

    The write is conditional on the record being IN_PROGRESS and owned by ``owner_execution_id`` (run ``run_id``),
    so an owner whose lease expired cannot overwrite the record of a newer owner, and a save never
    creates a record (an absent record fails the condition). Saving again what is already saved by
    the same owner succeeds, so a retried invocation is harmless.

    Raises:
        IdempotencyRecordLostError: another execution owns the record now, or it is gone.
    """
    if error is None:
        status = SUCCESS
        update = "SET #status = :status, #result = :result REMOVE #lease"
        values = {":status": {"S": SUCCESS}, ":result": {"S": json.dumps(result, separators=(",", ":"))}}
    else:
        status = FAILED
        update = "SET #status = :status, #error = :error, #cause = :cause REMOVE #lease"
        values = {":status": {"S": FAILED}, ":error": {"S": error}, ":cause": {"S": cause or ""}}
    condition = f"{_OWNED_CONDITION} AND #run_id = :run_id"
    try:
        response = client.update_item(
            TableName=table_name,
            Key={ID: {"S": key}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=_names(update + condition),
            ExpressionAttributeValues={
                **values,
                ":in_progress": {"S": IN_PROGRESS},
                ":execution_id": {"S": owner_execution_id},
                ":run_id": {"S": run_id},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        item = response["Attributes"]
    except client.exceptions.ConditionalCheckFailedException as refused:
        item = _item_of_refusal(refused) or {}
        already_saved = (
            item.get(EXECUTION_ID, {}).get("S") == owner_execution_id
            and item.get(RUN_ID, {}).get("S") == run_id
            and item.get(STATUS, {}).get("S") == status
        )
        if not already_saved:
            raise IdempotencyRecordLostError(
                f"Record {key} is no longer IN_PROGRESS and owned by {owner_execution_id} "
                f"(now {item.get(STATUS, {}).get('S', 'absent')}, owned by {item.get(EXECUTION_ID, {}).get('S')}); "
                "its lease expired and another execution took it over, or it was released. "
                "This execution's outcome was not stored."
            ) from refused
    return SavedOutcome(key=key, status=status, waiters=_waiters_of(item))


def release_record(client: DynamoDBClient, table_name: str, key: str, owner_execution_id: str) -> SavedOutcome | None:
    """Delete the record of ``key`` if it is still IN_PROGRESS and owned by ``owner_execution_id``.

    Returns what was deleted (with the waiters to wake), or None when the record is absent, saved
    or owned by another execution: then nothing changes.
    """
    condition = _OWNED_CONDITION
    try:
        response = client.delete_item(
            TableName=table_name,
            Key={ID: {"S": key}},
            ConditionExpression=condition,
            ExpressionAttributeNames=_names(condition),
            ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}, ":execution_id": {"S": owner_execution_id}},
            ReturnValues="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return SavedOutcome(key=key, status=IN_PROGRESS, waiters=_waiters_of(response.get("Attributes", {})))


def _item_of_refusal(refused: Exception) -> dict[str, Any] | None:
    """The item DynamoDB returned with a refused condition (``ReturnValuesOnConditionCheckFailure``)."""
    item = getattr(refused, "response", {}).get("Item")
    return item if isinstance(item, dict) else None


def _waiters_of(item: dict[str, Any]) -> dict[str, str]:
    return {name: value["S"] for name, value in item.get(WAITERS, {}).get("M", {}).items()}
