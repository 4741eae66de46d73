"""The idempotency record in DynamoDB: its attribute names and the one conditional write.

One item per key (partition key ``id``). The attribute names are part of the contract and
are also spelled in the state machine's save states (``statemachine/*.asl.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idempotency.errors import IdempotencyRecordStateError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# Attribute names (see CONTRACT: "The record").
ID = "id"
STATUS = "executionstatus"
RESULT = "executionresult"
EXECUTION_ID = "executionid"
START_TIME = "starttime"
TTL = "ttl"
LEASE_EXPIRY = "leaseexpiry"
ERROR = "error"
CAUSE = "cause"

# Values of STATUS.
IN_PROGRESS = "IN_PROGRESS"
SUCCESS = "SUCCESS"
FAILED = "FAILED"

# The record may be taken when it is absent, expired, failed, held under an expired lease, or
# already ours (a retried invocation whose first attempt wrote the record but lost the reply).
TAKE_CONDITION = (
    "attribute_not_exists(#id) OR #ttl < :now OR #status = :failed"
    " OR (#status = :in_progress AND (#lease < :now OR #execution_id = :execution_id))"
)

# What acquire_lock found; the state machine's Choice state branches on these.
ACQUIRED = "ACQUIRED"
COMPLETED = "COMPLETED"
BUSY = "BUSY"


@dataclass(frozen=True)
class Owner:
    """The execution that takes the record."""

    execution_id: str
    start_time: str


@dataclass(frozen=True)
class LockOutcome:
    """What happened when an execution tried to take the record of ``key``."""

    outcome: str
    key: str
    result: Any = None
    held_by: str | None = None

    def as_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {"outcome": self.outcome, "key": self.key}
        if self.outcome == COMPLETED:
            output["result"] = self.result
        if self.outcome == BUSY:
            output["heldBy"] = self.held_by
        return output


def acquire_lock(
    client: DynamoDBClient,
    table_name: str,
    key: str,
    owner: Owner,
    now: int,
    record_ttl_seconds: int,
    lease_seconds: int,
) -> LockOutcome:
    """Take the record of ``key`` as IN_PROGRESS with one conditional write.

    When the write is refused, the item DynamoDB returns with the refusal (read under the same
    condition check, so strongly consistent) tells whether the work is done or still running.
    """
    try:
        client.put_item(
            TableName=table_name,
            Item={
                ID: {"S": key},
                STATUS: {"S": IN_PROGRESS},
                EXECUTION_ID: {"S": owner.execution_id},
                START_TIME: {"S": owner.start_time},
                TTL: {"N": str(now + record_ttl_seconds)},
                LEASE_EXPIRY: {"N": str(now + lease_seconds)},
            },
            ConditionExpression=TAKE_CONDITION,
            ExpressionAttributeNames={
                "#id": ID,
                "#ttl": TTL,
                "#status": STATUS,
                "#lease": LEASE_EXPIRY,
                "#execution_id": EXECUTION_ID,
            },
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":failed": {"S": FAILED},
                ":in_progress": {"S": IN_PROGRESS},
                ":execution_id": {"S": owner.execution_id},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as refused:
        return _outcome_of_refusal(key, refused.response.get("Item"))
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
    raise IdempotencyRecordStateError(
        f"Record {key} has {STATUS}={status!r}; expected {IN_PROGRESS}, {SUCCESS} or {FAILED}."
    )
