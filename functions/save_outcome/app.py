"""Lambda handler that closes the idempotency envelope: stores the outcome and wakes the waiters.

Called with ``result`` after the steps succeeded (the record becomes SUCCESS) or with ``failure``
(``Error`` and ``Cause``, as a Catch gives them) after they failed (the record becomes FAILED).
The write is conditional on this execution still owning the record; if it does not, the
execution fails with ``IdempotencyRecordLostError`` and the newer owner's record is untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.observability import METRIC_FOR_SAVED_STATUS, WAITERS_WOKEN
from idempotency.record import save_outcome
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


def save_and_wake(event: dict[str, Any], client: DynamoDBClient, sfn: SFNClient, config: Settings) -> dict[str, Any]:
    """Store the outcome in ``event`` on the record of ``event["key"]``, then wake its waiters."""
    key, owner, run_id = event["key"], event["executionId"], event["runId"]
    logger.append_keys(idempotency_key=key)
    failure = event.get("failure")
    if failure is None:
        saved = save_outcome(client, config.table_name, key, owner, run_id, result=event.get("result"))
        message = wake_up_message(saved, result=event.get("result"))
    else:
        error, cause = str(failure.get("Error", "")), str(failure.get("Cause", ""))
        saved = save_outcome(client, config.table_name, key, owner, run_id, error=error, cause=cause)
        message = wake_up_message(saved, error=error, cause=cause)
    woken = wake_waiters(sfn, saved.waiters, message)
    logger.info("Outcome saved", extra={"status": saved.status, "waiters": len(saved.waiters), "woken": woken})
    return {"status": saved.status, "wokenWaiters": woken}


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    output = save_and_wake(event, dynamodb, stepfunctions, settings)
    metrics.add_metric(name=METRIC_FOR_SAVED_STATUS[output["status"]], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=WAITERS_WOKEN, unit=MetricUnit.Count, value=output["wokenWaiters"])
    return output
