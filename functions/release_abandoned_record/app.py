"""Lambda handler that frees the record of an execution that ended without saving its outcome.

An EventBridge rule sends it the "Step Functions Execution Status Change" events of the
workflows for ABORTED, TIMED_OUT and FAILED. Stopping an execution, or its timeout, does not
cancel a Lambda invocation (or a child execution) it has in flight: those calls run on and may
still act. So the record is never deleted here: if that execution still holds it, its lease is
cut to the moment its calls can have finished (``LongestCallSeconds`` after it stopped), and a
FAILED execution's error is recorded as the record's failure (never a silent rerun). Then its
waiters are woken to look again; a look after that moment checks with Step Functions that
neither the execution nor its child runs, and takes the record over.

If the execution has no record yet, its take may still be in flight and land later: a record
held by the ended execution until that same moment is written first, so the late take is
refused instead of blocking the key. A record saved, or taken by another execution since, is
left as it is.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import IdempotencyError
from idempotency.key import identify
from idempotency.observability import RECORDS_RELEASED, WAKE_UPS_FAILED
from idempotency.ownership import REDRIVE_PERIOD_SECONDS
from idempotency.record import Owner, end_ownership
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

FAILED_STATUS = "FAILED"


def execution_description(detail: dict[str, Any], sfn: SFNClient) -> dict[str, Any]:
    """The execution's input, error and cause: from the event, or from DescribeExecution when the event left them out."""
    included = detail.get("inputDetails", {}).get("included", True)
    if included and detail.get("input") is not None and (detail.get("status") != FAILED_STATUS or "error" in detail):
        return detail
    described = sfn.describe_execution(executionArn=detail["executionArn"])
    return {**detail, "input": described.get("input"), "error": described.get("error"), "cause": described.get("cause")}


def release_abandoned_record(
    detail: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings, now: int | None = None
) -> dict[str, Any]:
    """Free, once its calls can have ended, the record held by the execution the status-change ``detail`` describes."""
    execution_arn = detail["executionArn"]
    logger.append_keys(execution_arn=execution_arn, status=detail.get("status"))
    now = int(time.time()) if now is None else now
    described = execution_description(detail, sfn)
    try:
        key = identify(json.loads(str(described["input"])), config.scope_of(detail["stateMachineArn"]), config.key_rules).key
    except (IdempotencyError, json.JSONDecodeError, TypeError) as error:
        # Input with no key never got a record: nothing to release.
        logger.info("No record to release: the input has no key", extra={"error": type(error).__name__})
        return {"released": False, "reason": type(error).__name__}
    logger.append_keys(idempotency_key=key)
    stopped = _epoch_seconds(detail.get("stopDate"), default=now)
    free_at = stopped + config.longest_call_seconds
    failed = detail.get("status") == FAILED_STATUS
    failure_error = str(described.get("error") or "States.Runtime") if failed else None
    failure_cause = str(described.get("cause") or "") if failed else None
    ended = Owner(execution_id=execution_arn, start_time=_iso(detail.get("startDate"), now), run_id="")
    # An ended owner can be redriven for 14 days: its record must outlive that, so a redrive (or a
    # duplicate resuming it) finds it and its redriven save can still land.
    keep_until = stopped + REDRIVE_PERIOD_SECONDS + config.longest_call_seconds
    changed = end_ownership(
        client,
        config.table_name,
        key,
        ended,
        now,
        free_at,
        config.record_ttl_seconds,
        error=failure_error,
        cause=failure_cause,
        keep_until=keep_until,
    )
    if changed is None:
        logger.info("Record not held by this execution: left as it is, or held for its take still in flight")
        return {"released": False, "key": key, "freeAt": free_at}
    wake_ups = wake_waiters(client, sfn, config.table_name, changed, wake_up_message(changed), logger)
    if wake_ups.failed:
        metrics.add_metric(name=WAKE_UPS_FAILED, unit=MetricUnit.Count, value=wake_ups.failed)
    logger.info("Record released", extra={"free_at": free_at, "woken": wake_ups.woken, "status": changed.status})
    return {"released": True, "key": key, "freeAt": free_at, "status": changed.status, "wokenWaiters": wake_ups.woken}


def _epoch_seconds(value: Any, default: int) -> int:
    """An event's date (epoch milliseconds), rounded up to whole seconds: never free a key early."""
    if isinstance(value, (int, float)):
        return -(-int(value) // 1000)
    return default


def _iso(value: Any, default: int) -> str:
    seconds = value / 1000 if isinstance(value, (int, float)) else default
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@logger.inject_lambda_context(correlation_id_path="detail.executionArn", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    output = release_abandoned_record(dict(event.detail), dynamodb, stepfunctions, settings)
    metrics.add_metric(name=RECORDS_RELEASED, unit=MetricUnit.Count, value=int(output["released"]))
    return output
