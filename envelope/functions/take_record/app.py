"""Lambda handler that opens the idempotency envelope: the take (``idempotency.taking.look_and_take``).

It computes the key of the execution input and looks at its record with one strongly consistent
read; only a free record is then taken, with one conditional write. The state machine branches
on the outcome: ``ACQUIRED``, ``COMPLETED``, ``BUSY`` or, for a waiter whose policy is
``WaitersOnFailure=Fail``, ``FAILED``. A waiter whose wait is used up fails with
``IdempotencyWaitTimeoutError``.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.deployment import Deployment
from idempotency.errors import IdempotencyError, IdempotencyExecutionEndedError
from idempotency.observability import METRIC_FOR_OUTCOME, TAKEOVERS, refusal_metric
from idempotency.taking import look_and_take

logger = Logger()
metrics = Metrics()
# No Powertools Tracer here: every execution calls this function first, and aws_xray_sdk adds
# about 175 ms to its cold start (make bench). Lambda's active tracing still traces each call.


@cache
def deployment() -> Deployment:
    """Settings and clients, made on the first call (importing this module reads no environment)."""
    return Deployment.from_environment(boto3.client)


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        answer = look_and_take(event, deployment(), now=int(time.time()))
    except IdempotencyExecutionEndedError:
        logger.warning("This execution had ended when its take ran: nothing written")
        raise
    except IdempotencyError as error:
        metrics.add_metric(name=refusal_metric(error), unit=MetricUnit.Count, value=1)
        raise
    outcome = answer.outcome
    logger.append_keys(idempotency_key=answer.key)
    logger.info(
        "Idempotency record looked at", extra={"outcome": outcome.outcome, "waited_seconds": answer.waited_seconds}
    )
    if outcome.resumed_child is not None:
        logger.info("A failed owner's child is resumed", extra={"child_execution": outcome.resumed_child.execution_arn})
    if outcome.taken_over:
        metrics.add_metric(name=TAKEOVERS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=METRIC_FOR_OUTCOME[outcome.outcome], unit=MetricUnit.Count, value=1)
    return answer.output
