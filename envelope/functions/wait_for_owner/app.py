"""Lambda handler behind the waiter's ``lambda:invoke.waitForTaskToken`` Task state (``idempotency.waiting``).

It leaves the waiter's task token in a waiter slot of the record, so the owner wakes the waiter
as soon as it saves; if the record changed since the waiter looked, it sends the token itself.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.deployment import Deployment
from idempotency.waiting import wait_for_owner

logger = Logger()
tracer = Tracer()


@cache
def deployment() -> Deployment:
    """Settings and clients, made on the first call (importing this module reads no environment)."""
    return Deployment.from_environment(boto3.client)


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(idempotency_key=event["key"])
    answer = wait_for_owner(event, deployment(), now=int(time.time()), logger=logger)
    logger.info(
        "Waiting for the record's owner", extra={"registered": answer["registered"], "held_by": event["heldBy"]}
    )
    return answer
