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
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import IdempotencyError
from idempotency.front_door import COMPLETED, FrontDoorConfig, result_or_start
from idempotency.observability import FRONT_DOOR_HITS, FRONT_DOOR_STARTS, refusal_metric
from idempotency.settings import SDK_CONFIG, Settings

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

logger = Logger()
metrics = Metrics()
# No Powertools Tracer, as in the take function: a hit must stay a few milliseconds from a cold start too.
config = FrontDoorConfig.of(Settings.from_environment(), os.environ["IDEMPOTENT_WORKFLOW_ARN"])
dynamodb = boto3.client("dynamodb", config=SDK_CONFIG)


@cache
def stepfunctions() -> SFNClient:
    """Made on first use: a hit never starts anything."""
    return boto3.client("stepfunctions", config=SDK_CONFIG)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        answer = result_or_start(event, config, dynamodb, stepfunctions, now=int(time.time()))
    except IdempotencyError as error:
        metrics.add_metric(name=refusal_metric(error), unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(
        name=FRONT_DOOR_HITS if answer.outcome == COMPLETED else FRONT_DOOR_STARTS, unit=MetricUnit.Count, value=1
    )
    logger.info("Front door answered", extra={"outcome": answer.outcome, "idempotency_key": answer.key})
    return answer.as_output()
