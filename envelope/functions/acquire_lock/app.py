"""Lambda handler that opens the idempotency envelope.

It computes the key of the execution input and looks at its record with one strongly consistent
read; only a free record is then taken, with one conditional write. The state machine branches
on the outcome: ``ACQUIRED`` (run the steps), ``COMPLETED``
(return the stored ``result``), ``BUSY`` (wait for the owner, at most ``recheckAfterSeconds``
before looking again) or, for a waiter whose policy is ``WaitersOnFailure=Fail``, ``FAILED``
(fail with the owner's ``error`` and ``cause``). A waiter whose wait is used up fails with
``IdempotencyWaitTimeoutError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from idempotency.errors import (
    IdempotencyError,
    IdempotencyExecutionEndedError,
    IdempotencyResultTooLargeError,
    IdempotencyWaitTimeoutError,
)
from idempotency.key import identify
from idempotency.observability import METRIC_FOR_OUTCOME, TAKEOVERS, refusal_metric
from idempotency.ownership import LivenessChecker, execution_arn_of_child
from idempotency.record import ACQUIRED, BUSY, COMPLETED, LivenessCheck, Owner, ResumeHolder, RunningCheck, take_record
from idempotency.settings import FAIL, SDK_CONFIG, WAIT_BY_POLLING, Settings
from idempotency.wakeup import RECORD_CHANGED

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = Logger()
metrics = Metrics()
# No Powertools Tracer here: every execution calls this function first, and aws_xray_sdk adds
# about 175 ms to its cold start (make bench). Lambda's active tracing still traces each call.
settings = Settings.from_environment()
dynamodb = boto3.client("dynamodb", config=SDK_CONFIG)
# Made on first use: only a look at an expired lease asks Step Functions about the holder.
liveness = LivenessChecker(lambda: boto3.client("stepfunctions", config=SDK_CONFIG), settings.longest_call_seconds)

# The error Step Functions puts in the result of a Task state that timed out.
_TIMEOUT_ERROR = "States.Timeout"


def look_and_take(
    event: dict[str, Any],
    client: DynamoDBClient,
    config: Settings,
    now: int,
    check: LivenessCheck | None = None,
    running: RunningCheck | None = None,
    resume: ResumeHolder | None = None,
    child_check: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compute the key of ``event["input"]`` and look at its record; take it if it is free.

    ``event`` is what the state machine sends: ``input`` (the execution input), ``executionId``,
    ``startTime``, ``stateMachine`` (its ARN: the key's default scope), ``runId`` (tells apart runs
    of one Express execution), ``childStateMachine``
    (child variant) and, when looking again after waiting, ``waiting``: this function's previous
    ``BUSY`` output, with ``wakeUp`` (what ended a wait for a task token: a wake-up message or a
    timeout). ``check`` tells whether the holder of an expired lease can still act, ``running``
    whether this execution still runs before it replaces a record, and ``resume`` redrives an
    ended holder that can still be redriven instead of taking its record over (Standard).
    ``child_check`` refuses a child workflow the envelope cannot follow (an Express one).
    """
    identity = identify(event["input"], config.scope_of(event["stateMachine"]), config.key_rules)
    key = identity.key
    logger.append_keys(idempotency_key=key)
    waiting: dict[str, Any] | None = event.get("waiting")
    rechecks, waited_seconds = 0, 0
    # The wait just ended was told the record changed under it (its registration was refused):
    # if the record still looks busy, wait by polling this time, so a refusal can never loop.
    record_changed = False
    if waiting:
        rechecks, waited_seconds = int(waiting["rechecks"]), int(waiting["waitedSeconds"])
        wake_up = waiting.get("wakeUp") or {}
        record_changed = wake_up.get("outcome") == RECORD_CHANGED
        if waiting["waitBy"] == WAIT_BY_POLLING or wake_up.get("Error") == _TIMEOUT_ERROR:
            # Only time spent without any news counts against the wait bound.
            rechecks += 1
            waited_seconds += int(waiting["recheckAfterSeconds"])
    child = event.get("childStateMachine")
    if child and child_check is not None:
        child_check(child)
    child_execution = execution_arn_of_child(child, event["executionId"]) if child else None
    outcome = take_record(
        client,
        config.table_name,
        key,
        Owner(execution_id=event["executionId"], start_time=event["startTime"], run_id=event["runId"]),
        now=now,
        record_ttl_seconds=config.record_ttl_seconds,
        lease_seconds=config.lease_seconds,
        may_take_failed=not (waiting and config.waiter_failure_policy == FAIL),
        # Rerunning the steps would only make the same too-large result again: waiters fail with it.
        reported_errors=(IdempotencyResultTooLargeError.__name__,) if waiting else (),
        payload_hash=identity.payload_hash,
        child_execution=child_execution,
        liveness=check if config.checks_liveness else None,
        still_running=running if config.checks_liveness else None,
        resume=resume if config.checks_liveness else None,
    )
    logger.info("Idempotency record looked at", extra={"outcome": outcome.outcome, "waited_seconds": waited_seconds})
    if outcome.taken_over:
        metrics.add_metric(name=TAKEOVERS, unit=MetricUnit.Count, value=1)
    output = {**outcome.as_output(), "runId": event["runId"]}
    if outcome.outcome == COMPLETED:
        output["result"] = outcome.result
    if outcome.outcome == ACQUIRED and child_execution:
        # Where the owner's child runs: a redriven owner looks for it there when its start is refused.
        output["childExecution"] = child_execution
    if outcome.outcome == BUSY:
        due_in = None if outcome.look_again_at is None else max(1, outcome.look_again_at - now)
        recheck_after = config.recheck_after(rechecks, waited_seconds, due_in)
        if recheck_after == 0:
            raise IdempotencyWaitTimeoutError(
                f"Record {key} is still held by {outcome.holder.execution_id if outcome.holder else 'another execution'}, after waiting {waited_seconds}s "
                f"(WaitTimeoutSeconds={config.wait_timeout_seconds})."
            )
        output.update(
            waitBy=config.wait_by if outcome.wakes_waiters and not record_changed else WAIT_BY_POLLING,
            rechecks=rechecks,
            waitedSeconds=waited_seconds,
            recheckAfterSeconds=recheck_after,
        )
    return output


@logger.inject_lambda_context(correlation_id_path="executionId", clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        output = look_and_take(
            event,
            dynamodb,
            settings,
            now=int(time.time()),
            check=liveness,
            running=liveness.runs,
            resume=liveness.resume,
            child_check=liveness.refuse_express_child,
        )
    except IdempotencyExecutionEndedError:
        logger.warning("This execution had ended when its take ran: nothing written")
        raise
    except IdempotencyError as error:
        metrics.add_metric(name=refusal_metric(error), unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name=METRIC_FOR_OUTCOME[output["outcome"]], unit=MetricUnit.Count, value=1)
    return output
