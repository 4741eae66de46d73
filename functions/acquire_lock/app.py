"""Lambda handler that opens the idempotency envelope.

It computes the key of the execution input and tries to take the record with one conditional
write. The state machine branches on the outcome: ``ACQUIRED`` (run the steps), ``COMPLETED``
(return the stored ``result``) or ``BUSY`` (wait ``PollIntervalSeconds`` and call again with
``polls``). A waiter that has waited ``WaitTimeoutSeconds`` fails with
``IdempotencyWaitTimeoutError``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import IdempotencyWaitTimeoutError
from idempotency.key import compute_idempotency_key
from idempotency.record import BUSY, Owner, acquire_lock
from idempotency.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = Logger()
settings = Settings.from_environment()
dynamodb = boto3.client("dynamodb")


def take_record(event: dict[str, Any], client: DynamoDBClient, config: Settings, now: int) -> dict[str, Any]:
    """Compute the key of ``event["input"]`` and take, or look at, its record.

    ``event`` is what the state machine sends: ``input`` (the execution input), ``executionId``,
    ``startTime`` and, after a wait, ``polls`` (how many poll intervals this execution has waited).
    """
    key = compute_idempotency_key(event["input"])
    logger.append_keys(idempotency_key=key)
    polls = int(event.get("polls", 0))
    outcome = acquire_lock(
        client,
        config.table_name,
        key,
        Owner(execution_id=event["executionId"], start_time=event["startTime"]),
        now=now,
        record_ttl_seconds=config.record_ttl_seconds,
        lease_seconds=config.lease_seconds,
    )
    logger.info("Idempotency record looked at", extra={"outcome": outcome.outcome, "polls": polls})
    output = outcome.as_output()
    if outcome.outcome == BUSY:
        if polls >= config.max_polls:
            raise IdempotencyWaitTimeoutError(
                f"Record {key} is still IN_PROGRESS, held by {outcome.held_by}, after waiting {polls} x "
                f"{config.poll_interval_seconds}s (WaitTimeoutSeconds={config.wait_timeout_seconds})."
            )
        output["polls"] = polls + 1
    return output


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return take_record(event, dynamodb, settings, now=int(time.time()))
