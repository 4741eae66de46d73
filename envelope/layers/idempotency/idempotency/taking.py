"""The take function's work: key the execution input, account for the wait so far, take the record or say how to wait.

The state machine sends ``input`` (the execution input), ``executionId``, ``startTime``,
``stateMachine`` (its ARN: the key's default scope), ``runId`` (tells apart runs of one Express
execution), ``childStateMachine`` (child variant) and, when looking again after waiting,
``waiting``: the take's previous ``BUSY`` output, with ``wakeUp`` (what ended a wait for a task
token: a wake-up message or a timeout). The answer branches the state machine: ``ACQUIRED`` (run
the steps), ``COMPLETED`` (return the stored ``result``), ``BUSY`` (wait, at most
``recheckAfterSeconds`` before looking again) or, for a waiter whose policy is
``WaitersOnFailure=Fail``, ``FAILED`` (fail with the owner's ``error`` and ``cause``). In the child
variant, ``ACQUIRED`` also names the child to run: the owner's own, or a failed owner's child to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idempotency.decision import ChildRun, TakeOutcome, TakeRequest
from idempotency.deployment import Deployment
from idempotency.errors import IdempotencyResultTooLargeError, IdempotencyWaitTimeoutError
from idempotency.key import identify
from idempotency.ownership import execution_arn_of_child
from idempotency.record import Owner
from idempotency.settings import Settings
from idempotency.take import NO_CHECKS, HolderChecks, take_record
from idempotency.vocabulary import FailurePolicy, Outcome, WaitMode

# The error Step Functions puts in the result of a Task state that timed out.
_TIMEOUT_ERROR = "States.Timeout"
# The fields of an ACQUIRED output that name the child the owner runs (child variant; its ASL reads them).
CHILD_EXECUTION = "childExecution"
CHILD_NAME = "childName"
CHILD_STARTED_BY = "childStartedBy"
CHILD_REDRIVE_COUNT = "childRedriveCount"


@dataclass(frozen=True)
class WaitSoFar:
    """How long an execution has waited for the record's holder, from its previous ``BUSY`` output.

    Only time spent without any news counts against the wait bound: a poll, or a wait for a
    wake-up that timed out. ``record_changed``: the wait just ended was told the record changed
    under it (its registration was refused); if the record still looks busy, it waits by polling
    this time, so a refusal can never loop.
    """

    waiting: bool = False
    rechecks: int = 0
    waited_seconds: int = 0
    record_changed: bool = False

    @classmethod
    def of(cls, waiting: dict[str, Any] | None) -> WaitSoFar:
        if not waiting:
            return cls()
        rechecks, waited_seconds = int(waiting["rechecks"]), int(waiting["waitedSeconds"])
        wake_up = waiting.get("wakeUp") or {}
        if waiting["waitBy"] == WaitMode.POLLING or wake_up.get("Error") == _TIMEOUT_ERROR:
            rechecks += 1
            waited_seconds += int(waiting["recheckAfterSeconds"])
        return cls(True, rechecks, waited_seconds, wake_up.get("outcome") == Outcome.RECORD_CHANGED)


@dataclass(frozen=True)
class TakeAnswer:
    """What the take found (``outcome``), the state machine's output, and how long the caller has waited."""

    outcome: TakeOutcome
    output: dict[str, Any]
    waited_seconds: int

    @property
    def key(self) -> str:
        return self.outcome.key


def look_and_take(event: dict[str, Any], deployment: Deployment, now: int) -> TakeAnswer:
    """Compute the key of ``event["input"]`` and look at its record; take it if it is free.

    Step Functions is asked whether a child workflow is one the envelope can follow and, in a
    Standard workflow, about the record's holder (``take.HolderChecks``).

    Raises:
        IdempotencyWaitTimeoutError: the record is still held and the wait is used up.
        IdempotencyConfigurationError: the child workflow is one the envelope cannot follow (Express).
        IdempotencyExecutionEndedError, IdempotencyPayloadMismatchError, IdempotencyRecordStateError:
            see ``take.take_record``; and the input's own named errors (``key.identify``).
    """
    settings = deployment.settings
    identity = identify(event["input"], settings.scope_of(event["stateMachine"]), settings.key_rules)
    waited = WaitSoFar.of(event.get("waiting"))
    child = event.get("childStateMachine")
    if child:
        deployment.liveness.refuse_express_child(child)
    child_execution = execution_arn_of_child(child, event["executionId"]) if child else None
    holder_checks = NO_CHECKS
    if settings.checks_liveness:
        liveness = deployment.liveness
        holder_checks = HolderChecks(liveness, liveness.runs, liveness.resume, liveness.child_to_resume)
    request = TakeRequest(
        key=identity.key,
        owner=Owner(execution_id=event["executionId"], run_id=event["runId"], start_time=event["startTime"]),
        payload_hash=identity.payload_hash,
        child_execution=child_execution,
        may_take_failed=not (waited.waiting and settings.waiter_failure_policy == FailurePolicy.FAIL),
        # Rerunning the steps would only make the same too-large result again: waiters fail with it.
        reported_errors=(IdempotencyResultTooLargeError.__name__,) if waited.waiting else (),
    )
    outcome = take_record(deployment.records, request, now, holder_checks)
    output = {**outcome.as_output(), "runId": event["runId"]}
    if outcome.outcome == Outcome.COMPLETED:
        output["result"] = outcome.result
    if outcome.outcome == Outcome.ACQUIRED and child_execution:
        output.update(_child_to_run(outcome.resumed_child or ChildRun(child_execution, event["executionId"])))
    if outcome.outcome == Outcome.BUSY:
        output.update(_how_to_wait(outcome, waited, settings, now))
    return TakeAnswer(outcome, output, waited.waited_seconds)


def _child_to_run(child: ChildRun) -> dict[str, Any]:
    """The child the owner runs, as the state machine reads it: where it runs (a redriven owner, or one that
    resumes a failed owner's child, looks for it there when its start is refused), its name and the started-by
    field of its input (a start with the same name and input while it runs follows it), and how often it was
    redriven when the take looked (it is redriven again only while that is so)."""
    return {
        CHILD_EXECUTION: child.execution_arn,
        CHILD_NAME: child.name,
        CHILD_STARTED_BY: child.started_by,
        CHILD_REDRIVE_COUNT: child.redrive_count,
    }


def _how_to_wait(outcome: TakeOutcome, waited: WaitSoFar, settings: Settings, now: int) -> dict[str, Any]:
    """How a BUSY execution waits, and for how long at most before it looks again.

    Raises:
        IdempotencyWaitTimeoutError: its wait is used up.
    """
    due_in = None if outcome.look_again_at is None else max(1, outcome.look_again_at - now)
    recheck_after = settings.recheck_after(waited.rechecks, waited.waited_seconds, due_in)
    if recheck_after == 0:
        holder = outcome.holder.execution_id if outcome.holder else "another execution"
        raise IdempotencyWaitTimeoutError(
            f"Record {outcome.key} is still held by {holder}, after waiting {waited.waited_seconds}s "
            f"(WaitTimeoutSeconds={settings.wait_timeout_seconds})."
        )
    return {
        "waitBy": settings.wait_by if outcome.wakes_waiters and not waited.record_changed else WaitMode.POLLING,
        "rechecks": waited.rechecks,
        "waitedSeconds": waited.waited_seconds,
        "recheckAfterSeconds": recheck_after,
    }
