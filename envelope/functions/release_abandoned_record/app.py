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

It never fails on what an event says: an event it cannot key (no execution ARN, an input that is
not a JSON object, or that the take refused) is logged and left, since no record was made for it.
Only a failing AWS call raises, so that Lambda tries the event again.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeGuard

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from idempotency.errors import IdempotencyError, IdempotencyInputNotJsonSafeError, IdempotencyInputTooDeepError
from idempotency.key import MAX_NESTING_DEPTH, identify, json_text_depth
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
# Why an event is left alone when it does not say which execution ended.
NOT_AN_EXECUTION = "NotAnExecutionStatusChange"
# DescribeExecution's answers for an ARN that names no execution: there is nothing to key then.
_NO_SUCH_EXECUTION = ("ExecutionDoesNotExist", "InvalidArn")


class _NoKey(Exception):
    """The ended execution has no key (so no record): ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def execution_description(detail: dict[str, Any], sfn: SFNClient) -> dict[str, Any]:
    """The execution's input, error and cause: from the event, or from DescribeExecution when the event left them out."""
    input_details = detail.get("inputDetails")
    included = input_details.get("included", True) if isinstance(input_details, dict) else True
    if (
        included
        and isinstance(detail.get("input"), str)
        and (detail.get("status") != FAILED_STATUS or "error" in detail)
    ):
        return detail
    try:
        described = sfn.describe_execution(executionArn=detail["executionArn"])
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _NO_SUCH_EXECUTION:
            raise _NoKey(code) from error
        raise
    return {**detail, "input": described.get("input"), "error": described.get("error"), "cause": described.get("cause")}


def execution_input(text: Any) -> Any:
    """The execution input, parsed from its JSON text; bounded in depth before the (recursive) parser reads it.

    Raises:
        IdempotencyInputTooDeepError: it nests deeper than the take accepts (so the take refused it).
        IdempotencyInputNotJsonSafeError: it has a number the parser cannot read (over 4,300 digits).
        _NoKey: there is no input text, or it is not JSON.
    """
    if not isinstance(text, str):
        raise _NoKey("NoExecutionInput")
    depth = json_text_depth(text)
    if depth > MAX_NESTING_DEPTH:
        raise IdempotencyInputTooDeepError(
            f"The execution input is nested {depth} levels deep; at most {MAX_NESTING_DEPTH} are accepted."
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _NoKey(type(error).__name__) from error
    except ValueError as error:  # an integer too long for Python to read: the take could not have keyed it
        raise IdempotencyInputNotJsonSafeError(f"The execution input has no canonical JSON form ({error}).") from error


def release_abandoned_record(
    detail: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings, now: int | None = None
) -> dict[str, Any]:
    """Free, once its calls can have ended, the record held by the execution the status-change ``detail`` describes.

    What it cannot key (see the module's docstring) it logs and leaves: ``{"released": False, "reason": ...}``.
    """
    execution_arn = detail.get("executionArn") if isinstance(detail, dict) else None
    if not _is_arn(execution_arn) or not _is_arn(detail.get("stateMachineArn")):
        logger.warning("Not a status change of an execution: nothing to release")
        return {"released": False, "reason": NOT_AN_EXECUTION}
    logger.append_keys(execution_arn=execution_arn, status=detail.get("status"))
    now = int(time.time()) if now is None else now
    try:
        described = execution_description(detail, sfn)
        key = identify(
            execution_input(described.get("input")), config.scope_of(detail["stateMachineArn"]), config.key_rules
        ).key
    except (IdempotencyError, _NoKey) as error:
        # Input with no key never got a record: nothing to release.
        reason = error.reason if isinstance(error, _NoKey) else type(error).__name__
        logger.info("No record to release: the input has no key", extra={"reason": reason})
        return {"released": False, "reason": reason}
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


def _is_arn(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("arn:") and len(value) <= _LONGEST_ARN


# An ARN is at most 2,048 characters (the API refuses longer ones before asking Step Functions).
_LONGEST_ARN = 2048
# Dates an event may carry (epoch milliseconds): from 1970 to the year 9999, which datetime can write.
_LATEST_DATE_MS = 253_402_300_799_000


def _epoch_seconds(value: Any, default: int) -> int:
    """An event's date (epoch milliseconds), rounded up to whole seconds: never free a key early."""
    if _is_date(value):
        return -(-int(value) // 1000)
    return default


def _iso(value: Any, default: int) -> str:
    seconds = value / 1000 if _is_date(value) else default
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_date(value: Any) -> bool:
    # Not a bool, NaN, Infinity or a number datetime cannot write: such an event says nothing about when.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= _LATEST_DATE_MS


@logger.inject_lambda_context(correlation_id_path="detail.executionArn", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.raw_event.get("detail") if isinstance(event.raw_event, dict) else None
    output = release_abandoned_record(detail if isinstance(detail, dict) else {}, dynamodb, stepfunctions, settings)
    metrics.add_metric(name=RECORDS_RELEASED, unit=MetricUnit.Count, value=int(output["released"]))
    return output
