"""Lambda handler that closes the idempotency envelope: stores the outcome and wakes the waiters.

Called with ``result`` after the steps succeeded (the record becomes SUCCESS) or with ``failure``
(``Error`` and ``Cause``, as a Catch gives them) after they failed (the record becomes FAILED).
The write is conditional on this execution still owning the record; if it does not, the
execution fails with ``IdempotencyRecordLostError`` and the newer owner's record is untouched.
A result too large to store and return is recorded as FAILED with
``IdempotencyResultTooLargeError``, never released to run again. Once the outcome is stored,
nothing fails the execution: a waiter that cannot be woken is logged, counted, and finds the
outcome when it looks again on its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import IdempotencyResultTooLargeError
from idempotency.limits import MAX_RESULT_BYTES
from idempotency.observability import METRIC_FOR_SAVED_STATUS, RESULTS_TOO_LARGE, WAITERS_WOKEN, WAKE_UPS_FAILED
from idempotency.ownership import calls_in_flight
from idempotency.record import encode_result, save_outcome
from idempotency.settings import SDK_CONFIG, Settings
from idempotency.wakeup import WakeUps, wake_up_message, wake_waiters

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_stepfunctions.client import SFNClient

logger = Logger()
metrics = Metrics()
tracer = Tracer()
settings = Settings.from_environment()
dynamodb = boto3.client("dynamodb", config=SDK_CONFIG)
stepfunctions = boto3.client("stepfunctions", config=SDK_CONFIG)


def save_and_wake(event: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings) -> dict[str, Any]:
    """Store the outcome in ``event`` on the record of ``event["key"]``, then wake its waiters.

    Raises:
        IdempotencyResultTooLargeError: after recording it as the record's failure.
        IdempotencyRecordLostError: this execution no longer owns the record (nothing is written).
    """
    key, owner, run_id = event["key"], event["executionId"], event["runId"]
    logger.append_keys(idempotency_key=key)
    failure = event.get("failure")
    too_large: IdempotencyResultTooLargeError | None = None
    if failure is None:
        result_json = encode_result(event.get("result"))
        size = len(result_json.encode("utf-8"))
        if size > MAX_RESULT_BYTES:
            too_large = IdempotencyResultTooLargeError(
                f"The steps' result is {size} bytes as JSON (UTF-8); at most {MAX_RESULT_BYTES} can be stored and returned "
                f"under Step Functions' 256 KiB payload limit. Record {key} is FAILED: return a reference (e.g. an S3 URI) instead."
            )
            failure = {"Error": type(too_large).__name__, "Cause": str(too_large)}
    if failure is None:
        saved = save_outcome(client, config.table_name, key, owner, run_id, result_json=result_json)
        message = wake_up_message(saved, result=event.get("result"))
    else:
        error, cause = str(failure.get("Error", "")), str(failure.get("Cause", ""))
        # The failed steps' other calls (a Parallel's other branches) run on: not taken again before they can have ended.
        # Rounded up: never free the key early.
        quiet_until = int(time.time()) + 1 + config.longest_call_seconds if calls_in_flight(sfn, owner) else None
        saved = save_outcome(
            client, config.table_name, key, owner, run_id, error=error, cause=cause, quiet_until=quiet_until
        )
        message = wake_up_message(saved)
    wake_ups = wake_waiters(client, sfn, config.table_name, saved, message, logger)
    logger.info("Outcome saved", extra={"status": saved.status, "waiters": saved.waiter_count, "woken": wake_ups.woken})
    output = {"status": saved.status, "wokenWaiters": wake_ups.woken, "wakeUpsFailed": wake_ups.failed}
    _count(output, wake_ups, too_large is not None)
    if too_large is not None:
        raise too_large
    return output


def _count(output: dict[str, Any], wake_ups: WakeUps, too_large: bool) -> None:
    metrics.add_metric(name=METRIC_FOR_SAVED_STATUS[output["status"]], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=WAITERS_WOKEN, unit=MetricUnit.Count, value=wake_ups.woken)
    if wake_ups.failed:
        metrics.add_metric(name=WAKE_UPS_FAILED, unit=MetricUnit.Count, value=wake_ups.failed)
    if too_large:
        metrics.add_metric(name=RESULTS_TOO_LARGE, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return save_and_wake(event, dynamodb, stepfunctions, settings)
