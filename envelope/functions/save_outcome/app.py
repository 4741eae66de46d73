"""Lambda handler that closes the idempotency envelope: the save (``idempotency.saving.save_and_wake``).

It stores the steps' outcome on the record this execution owns and wakes its waiters. If the
execution no longer owns the record, it fails with ``IdempotencyRecordLostError`` and the newer
owner's record is untouched; a result too large to store and return is recorded as FAILED and
fails the execution with ``IdempotencyResultTooLargeError``.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.deployment import Deployment
from idempotency.observability import METRIC_FOR_SAVED_STATUS, RESULTS_TOO_LARGE, WAITERS_WOKEN, WAKE_UPS_FAILED
from idempotency.saving import save_and_wake

logger = Logger()
metrics = Metrics()
tracer = Tracer()


@cache
def deployment() -> Deployment:
    """Settings and clients, made on the first call (importing this module reads no environment)."""
    return Deployment.from_environment(boto3.client)


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(idempotency_key=event["key"])
    answer = save_and_wake(event, deployment(), now=int(time.time()), logger=logger)
    saved, wake_ups = answer.saved, answer.wake_ups
    logger.info("Outcome saved", extra={"status": saved.status, "waiters": saved.waiter_count, "woken": wake_ups.woken})
    metrics.add_metric(name=METRIC_FOR_SAVED_STATUS[saved.status], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=WAITERS_WOKEN, unit=MetricUnit.Count, value=wake_ups.woken)
    if wake_ups.failed:
        metrics.add_metric(name=WAKE_UPS_FAILED, unit=MetricUnit.Count, value=wake_ups.failed)
    if answer.too_large is not None:
        metrics.add_metric(name=RESULTS_TOO_LARGE, unit=MetricUnit.Count, value=1)
        raise answer.too_large
    return answer.output
