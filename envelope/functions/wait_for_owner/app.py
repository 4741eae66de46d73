"""Lambda handler behind the waiter's ``lambda:invoke.waitForTaskToken`` Task state.

It leaves the waiter's task token in a waiter slot of the record, so the owner wakes the waiter
as soon as it saves. If the record changed since the waiter looked (saved, released, taken over,
expired), nobody would send that token: the handler sends it itself, and the waiter looks again
at once. If the token cannot be stored at all (DynamoDB refuses or fails), the waiter is not
woken: its wait times out after its backed-off interval and it looks again, and that time
counts toward ``WaitTimeoutSeconds``, so a failing registration never loops.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from idempotency.record import Holder, register_waiter
from idempotency.settings import SDK_CONFIG, Settings
from idempotency.wakeup import RECORD_CHANGED, send_to_tokens

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_stepfunctions.client import SFNClient

logger = Logger()
tracer = Tracer()
settings = Settings.from_environment()
dynamodb = boto3.client("dynamodb", config=SDK_CONFIG)
stepfunctions = boto3.client("stepfunctions", config=SDK_CONFIG)


def wait_for_owner(
    event: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings, now: int
) -> dict[str, Any]:
    """Register ``event["taskToken"]`` on the record of ``event["key"]``, held by run ``heldByRun`` of ``heldBy``."""
    key, token = event["key"], event["taskToken"]
    logger.append_keys(idempotency_key=key)
    holder = Holder(execution_id=event["heldBy"], run_id=event["heldByRun"], lease_expiry=0)
    try:
        registered = register_waiter(
            client, config.table_name, key, holder, task_token=token, now=now, slot_ttl=now + config.record_ttl_seconds
        )
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "The wait could not be registered: looking again after the wait's interval",
            extra={"error": type(error).__name__, "detail": str(error)[:500]},
        )
        return {"registered": False, "reason": type(error).__name__}
    if not registered:
        send_to_tokens(sfn, [token], {"outcome": RECORD_CHANGED, "key": key}, logger)
    logger.info("Waiting for the record's owner", extra={"registered": registered, "held_by": event["heldBy"]})
    return {"registered": registered}


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wait_for_owner(event, dynamodb, stepfunctions, settings, now=int(time.time()))
