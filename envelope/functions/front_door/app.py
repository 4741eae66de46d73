"""Lambda handler of the front door: a repeat answered by one read, anything else starts the envelope.

The event is the execution input itself, as ``StartExecution`` would take it. The answer is
``{"outcome": "COMPLETED", "key": ..., "result": ...}`` (the stored result, nothing started) or
``{"outcome": "STARTED", "key": ..., "executionArn": ...}`` (an envelope execution started with the
input: describe it, or wait for its status-change event, for its output). Bad input fails with the
envelope's named errors and starts nothing. See ``idempotency.front_door``.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.deployment import Deployment
from idempotency.errors import IdempotencyError
from idempotency.front_door import WORKFLOW_ARN_VARIABLE, FrontDoorConfig, result_or_start
from idempotency.observability import FRONT_DOOR_HITS, FRONT_DOOR_STARTS, refusal_metric
from idempotency.vocabulary import Outcome

logger = Logger()
metrics = Metrics()
# No Powertools Tracer, as in the take function: a hit must stay a few milliseconds from a cold start too.


@cache
def deployment() -> tuple[Deployment, FrontDoorConfig]:
    """Settings and clients, and the envelope this front door starts, made on the first call (importing this
    module reads no environment)."""
    made = Deployment.from_environment(boto3.client)
    return made, FrontDoorConfig.of(made.settings, os.environ[WORKFLOW_ARN_VARIABLE])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    made, config = deployment()
    try:
        answer = result_or_start(event, config, made.records, lambda: made.stepfunctions, int(time.time()))
    except IdempotencyError as error:
        metrics.add_metric(name=refusal_metric(error), unit=MetricUnit.Count, value=1)
        raise
    hit = answer.outcome == Outcome.COMPLETED
    metrics.add_metric(name=FRONT_DOOR_HITS if hit else FRONT_DOOR_STARTS, unit=MetricUnit.Count, value=1)
    logger.info("Front door answered", extra={"outcome": answer.outcome, "idempotency_key": answer.key})
    return answer.as_output()
