"""Lambda handler that frees the record of an execution that ended without saving its outcome.

An EventBridge rule sends it the status changes of the workflows' executions that were stopped,
timed out or failed; ``idempotency.releasing.release_abandoned_record`` does the work. It never
fails on what an event says; only a failing AWS call raises, so that Lambda tries the event again.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.deployment import Deployment
from idempotency.observability import RECORDS_RELEASED, WAKE_UPS_FAILED
from idempotency.releasing import release_abandoned_record

logger = Logger()
metrics = Metrics()
tracer = Tracer()


@cache
def deployment() -> Deployment:
    """Settings and clients, made on the first call (importing this module reads no environment)."""
    return Deployment.from_environment(boto3.client)


@logger.inject_lambda_context(correlation_id_path="detail.executionArn", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = event.raw_event.get("detail") if isinstance(event.raw_event, dict) else None
    answer = release_abandoned_record(
        detail if isinstance(detail, dict) else {}, deployment(), now=int(time.time()), logger=logger
    )
    if answer.wake_ups.failed:
        metrics.add_metric(name=WAKE_UPS_FAILED, unit=MetricUnit.Count, value=answer.wake_ups.failed)
    metrics.add_metric(name=RECORDS_RELEASED, unit=MetricUnit.Count, value=int(answer.released))
    return answer.output
