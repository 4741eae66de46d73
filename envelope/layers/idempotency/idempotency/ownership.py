"""Whether a record's owner can still act, asked of Step Functions (Standard workflows only).

A lease says how long an owner is presumed alive; it is not a proof. When it runs out, the
execution that finds it so asks Step Functions (``DescribeExecution``) about the holder, and
about the child execution it started (child variant). The holder can still act while either
runs; once both ended, calls they started may still run (``StopExecution`` and an execution
timeout cancel no running Lambda invocation), so the key is free only ``longest_call_seconds``
after the last of them stopped. Express executions cannot be described: their lease alone decides
(settings make it outlive the execution).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from idempotency.errors import IdempotencyConfigurationError
from idempotency.record import ChildState, Holder, Liveness
from idempotency.vocabulary import WorkflowType

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.client import SFNClient

RUNNING = ("RUNNING", "PENDING_REDRIVE")
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
# An execution that ended in a top-level Fail state: its ExecutionFailed event follows a FailStateEntered
# (a Fail state inside a Parallel or Map is followed by that state's own failure event).
_FAIL_STATE_ENTERED, _EXECUTION_FAILED = "FailStateEntered", "ExecutionFailed"
# The input field with which Step Functions links a child execution to the execution that started it.
STARTED_BY_FIELD = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
# DescribeExecution's redriveStatus of an ended execution Step Functions can still redrive.
REDRIVABLE = "REDRIVABLE"
# How long after its end Step Functions can redrive a Standard execution ("Redrive eligibility").
REDRIVE_PERIOD_SECONDS = 14 * 24 * 3600
# The execution is unknown: never started (a child the owner did not get to start), or its
# history is gone (Step Functions keeps a closed Standard execution for 90 days).
_UNKNOWN = ("ExecutionDoesNotExist",)
# Step Functions will not say: an execution of a state machine these functions may not describe
# (another workflow given the same IdempotencyScope), or not a Standard execution ARN. Then the
# lease alone decides, as for Express workflows; asking again would never get an answer.
_UNANSWERABLE = ("AccessDeniedException", "InvalidArn")
# RedriveExecution's answer for an execution that runs, succeeded, or can no longer be redriven.
_NOT_REDRIVABLE = "ExecutionNotRedrivable"


class LivenessChecker:
    """Answers ``take.LivenessCheck`` with ``DescribeExecution`` calls; the client is made on first use.

    Any passing doubt (a throttled or failed call) counts as "can still act": a live owner's
    record must never be taken, and the next look asks again. An execution Step Functions will
    never describe to these functions (access denied) is left to its lease, as an Express one is.
    """

    def __init__(self, make_client: Any, longest_call_seconds: int) -> None:
        self._make_client = make_client
        self._client: SFNClient | None = None
        self.longest_call_seconds = longest_call_seconds
        self.checks = 0
        # Child workflows found Standard: asked once per state machine and container.
        self._standard_children: set[str] = set()

    def __call__(self, holder: Holder, now: int) -> Liveness:
        self.checks += 1
        if self._client is None:
            self._client = self._make_client()
        stops: list[int] = []
        redrivable = False
        for execution_arn in filter(None, (holder.execution_id, holder.child_execution)):
            try:
                description = self._client.describe_execution(executionArn=execution_arn)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in _UNKNOWN:
                    continue
                if code in _UNANSWERABLE:
                    return Liveness(can_act=False)
                return Liveness(can_act=True)
            except BotoCoreError:
                return Liveness(can_act=True)
            if description["status"] in RUNNING:
                return Liveness(can_act=True)
            stops.append(_epoch_seconds(description.get("stopDate"), default=now))
            redrivable = redrivable or description.get("redriveStatus") == REDRIVABLE
        return Liveness(can_act=False, free_at=max(stops, default=0) + self.longest_call_seconds, redrivable=redrivable)

    def resume(self, holder: Holder) -> bool:
        """Redrive an ended holder (``take.ResumeHolder``).

        True when the holder runs again, by this redrive or another one; False when Step Functions
        will never run it again, and then its record may be taken over. A doubt counts as running.

        A holder with a child workflow (child variant) is resumed the same way: its redrive reruns
        its start of the child under the same name, which Step Functions refuses once the child has
        ended, and the holder then follows that child (redriving it if it was stopped with its
        parent) instead of starting another. The child ends after its parent when the parent is
        stopped, so it may still be redriven when its parent no longer can: its record is not taken
        over before the child too can never run again.
        """
        if self._client is None:
            self._client = self._make_client()
        try:
            self._client.redrive_execution(executionArn=holder.execution_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != _NOT_REDRIVABLE:
                return True  # no answer: wait, and look again
        except BotoCoreError:
            return True
        if self.runs(holder.execution_id):
            return True
        return holder.child_execution is not None and self._may_run_again(holder.child_execution)

    def _may_run_again(self, execution_arn: str) -> bool:
        """Whether an execution runs or can still be redriven; a doubt counts as yes, an unknown one as no."""
        assert self._client is not None
        self.checks += 1
        try:
            description = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            return error.response.get("Error", {}).get("Code") not in (*_UNKNOWN, *_UNANSWERABLE)
        except BotoCoreError:
            return True
        return description["status"] in RUNNING or description.get("redriveStatus") == REDRIVABLE

    def child_to_resume(self, child_arn: str, asking_execution: str) -> ChildState:
        """What the child a failed holder ran can still do (``take.ChildCheck``), asked by ``asking_execution``.

        It may run again when it is the child its name's parent started (an execution of the asker's
        state machine, named as the child: its input's started-by field says so; a child of that name
        started otherwise is never resumed), and it runs, succeeded, or can still be redriven. A child
        Step Functions does not know, or will not describe, cannot; a passing doubt is ``in_doubt``.
        """
        if self._client is None:
            self._client = self._make_client()
        self.checks += 1
        try:
            description = self._client.describe_execution(executionArn=child_arn)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            return ChildState(may_run_again=False, in_doubt=code not in (*_UNKNOWN, *_UNANSWERABLE))
        except BotoCoreError:
            return ChildState(may_run_again=False, in_doubt=True)
        parent = parent_of_child(child_arn, asking_execution)
        if _started_by(description.get("input")) != parent:
            return ChildState(may_run_again=False)
        status = description["status"]
        may_run_again = status in RUNNING or status == SUCCEEDED or description.get("redriveStatus") == REDRIVABLE
        if may_run_again and status == FAILED and self._ended_in_a_fail_state(child_arn):
            # A redrive would run its Fail state alone, whoever asks for it: no step. The next run starts
            # a new child with its own input, as after any failure (a workflow that catches an error and
            # fails on purpose can then succeed next time).
            may_run_again = False
        return ChildState(may_run_again, started_by=parent, redrive_count=int(description.get("redriveCount", 0)))

    def _ended_in_a_fail_state(self, execution_arn: str) -> bool:
        """Whether the execution's last state was a top-level Fail state (its redrive would rerun only that).
        A history that cannot be read counts as "no": resuming is the side that never runs a step twice."""
        assert self._client is not None
        try:
            # The newest events, with room for calls that logged their end after the execution's.
            page = self._client.get_execution_history(executionArn=execution_arn, reverseOrder=True, maxResults=100)
        except (ClientError, BotoCoreError):
            return False
        # The state ExecutionFailed follows (its previousEventId), not merely the event before it by number:
        # the calls of a failed Parallel's other branches can still log their end around it.
        events = {int(event["id"]): event for event in page["events"]}
        ends = [event for event in events.values() if event["type"] == _EXECUTION_FAILED]
        if not ends:
            return False
        before = events.get(int(max(ends, key=lambda event: int(event["id"])).get("previousEventId", 0)))
        return before is not None and before["type"] == _FAIL_STATE_ENTERED

    def runs(self, execution_arn: str) -> bool:
        """Whether the execution still runs (``take.RunningCheck``); a doubt, or no answer, counts as running."""
        if self._client is None:
            self._client = self._make_client()
        self.checks += 1
        try:
            description = self._client.describe_execution(executionArn=execution_arn)
        except (ClientError, BotoCoreError):
            return True
        return description["status"] in RUNNING

    def refuse_express_child(self, state_machine_arn: str) -> None:
        """Refuse to wrap an Express state machine (child variant), once per state machine, before any write.

        Step Functions can neither describe nor stop an Express execution: when the envelope is
        stopped, its Express child runs on unseen (up to 5 minutes), so a duplicate would start a
        second one beside it, and a redrive of the envelope would start the child afresh rather than
        continue it. If the state machine cannot be described (no answer), the take goes on.

        Raises:
            IdempotencyConfigurationError: ``state_machine_arn`` is an Express state machine.
        """
        if state_machine_arn in self._standard_children:
            return
        if self._client is None:
            self._client = self._make_client()
        try:
            described = self._client.describe_state_machine(stateMachineArn=state_machine_arn)
        except (ClientError, BotoCoreError):
            return
        if described.get("type") == WorkflowType.EXPRESS:
            raise IdempotencyConfigurationError(
                f"WorkflowArn {state_machine_arn} is an Express state machine: Step Functions can neither describe "
                "nor stop an Express execution, so the envelope could not tell when a child left running by a stopped "
                "envelope ends, nor continue it on a redrive. Wrap a Standard state machine (it may itself call "
                "Express workflows)."
            )
        self._standard_children.add(state_machine_arn)


def execution_arn_of_child(child_state_machine_arn: str, parent_execution_arn: str) -> str:
    """The ARN of the child the child variant starts: named after its parent execution (see the child ASL)."""
    prefix, _, machine = child_state_machine_arn.rpartition(":stateMachine:")
    parent_name = parent_execution_arn.rsplit(":", 1)[-1]
    return f"{prefix}:execution:{machine}:{parent_name}"


def parent_of_child(child_execution_arn: str, sibling_execution_arn: str) -> str:
    """The execution that started a child (child variant): the execution of ``sibling_execution_arn``'s state
    machine named as the child (the inverse of ``execution_arn_of_child``)."""
    return f"{sibling_execution_arn.rsplit(':', 1)[0]}:{child_execution_arn.rsplit(':', 1)[-1]}"


def _started_by(execution_input: Any) -> Any:
    """The started-by field of an execution's input (JSON text), or None."""
    try:
        parsed = json.loads(execution_input) if isinstance(execution_input, str) else None
    except ValueError:
        return None
    return parsed.get(STARTED_BY_FIELD) if isinstance(parsed, dict) else None


def _epoch_seconds(moment: Any, default: int) -> int:
    if isinstance(moment, datetime):
        return int(moment.timestamp()) + 1  # rounded up: never free a key early
    if isinstance(moment, (int, float)):
        return int(moment) + 1
    return default


# History events that end a task's call, and the one that begins it.
_CALL_STARTED = "TaskStarted"
_CALL_ENDED = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")


def calls_in_flight(sfn: SFNClient, execution_arn: str) -> bool:
    """Whether a task call the execution started, other than the caller's own, has not ended in its
    history (a Parallel's other branches, stopped when one failed, leave their Lambda calls running).

    Any doubt (the history cannot be read) counts as "in flight": the key then waits out the
    calls' bound instead of letting a rerun run beside them.
    """
    started: set[int] = set()
    ended: set[int] = set()
    try:
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, reverseOrder=True):
            for event in page["events"]:
                if event["type"] == _CALL_STARTED:
                    started.add(int(event["id"]))
                elif event["type"] in _CALL_ENDED and "previousEventId" in event:
                    ended.add(int(event["previousEventId"]))
    except (ClientError, BotoCoreError):
        return True
    # The latest call started is the caller's own (the save recording this failure): it runs, of course.
    started.discard(max(started, default=0))
    return bool(started - ended)
