"""Lambda handler that releases the record of an execution that ended without saving.

An EventBridge rule sends it the "Step Functions Execution Status Change" events of the
workflow for ABORTED, TIMED_OUT and FAILED. If that execution still holds the record of its
input (IN_PROGRESS, owned by it), the record is deleted and its waiters are woken, so the key is
free again at once instead of after the lease. A record saved as FAILED, or taken over by another
execution since, is left as it is.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import IdempotencyError
from idempotency.key import compute_idempotency_key
from idempotency.observability import RECORDS_RELEASED
from idempotency.record import release_record
from idempotency.settings import SDK_CONFIG, Settings
from idempotency.wakeup import wake_up_message, wake_waiters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_stepfunctions.client import SFNClient

logger = Logger()
metrics = Metrics()
tracer = Tracer()
settings = Settings.from_environment()
dynamodb = boto3.client("dynamodb", config=SDK_CONFIG)
stepfunctions = boto3.client("stepfunctions", config=SDK_CONFIG)


def execution_input(detail: dict[str, Any], sfn: SFNClient) -> str:
    """The execution's input text: from the event, or from DescribeExecution when the event left it out."""
    included = detail.get("inputDetails", {}).get("included", True)
    if included and detail.get("input") is not None:
        return str(detail["input"])
    return sfn.describe_execution(executionArn=detail["executionArn"])["input"]


def release_abandoned_record(
    detail: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings
) -> dict[str, Any]:
    """Release the record held by the execution the status-change ``detail`` describes, if it still holds it."""
    execution_arn = detail["executionArn"]
    logger.append_keys(execution_arn=execution_arn, status=detail.get("status"))
    try:
        key = compute_idempotency_key(json.loads(execution_input(detail, sfn)))
    except (IdempotencyError, json.JSONDecodeError) as error:
        # Input with no key never got a record: nothing to release.
        logger.info("No record to release: the input has no key", extra={"error": type(error).__name__})
        return {"released": False, "reason": type(error).__name__}
    logger.append_keys(idempotency_key=key)
    released = release_record(client, config.table_name, key, execution_arn)
    if released is None:
        logger.info("Record not held by this execution: left as it is")
        return {"released": False, "key": key}
    woken = wake_waiters(sfn, released.waiters, wake_up_message(released))
    logger.info("Record released", extra={"woken": woken})
    return {"released": True, "key": key, "wokenWaiters": woken}


@logger.inject_lambda_context(correlation_id_path="detail.executionArn", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    output = release_abandoned_record(dict(event.detail), dynamodb, stepfunctions, settings)
    metrics.add_metric(name=RECORDS_RELEASED, unit=MetricUnit.Count, value=int(output["released"]))
    return output
