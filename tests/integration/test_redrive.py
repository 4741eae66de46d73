"""Redrive (Step Functions' RedriveExecution, on the emulator's model of it) and the envelope: one logical run.

An owner that ended while it held its record can be redriven for 14 days: the same execution
continues from its unsuccessful state, its aborted business steps run again, its succeeded ones
do not. So its record is never taken over while it can still be redriven: a duplicate that
finds it ended resumes it (RedriveExecution) and waits for it, and whoever redrives it, an
operator or a duplicate, it finishes the same logical run.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import OfflineStack
from emulator.adapters import Gate
from idempotency.key import compute_idempotency_key
from tests.integration.support import (
    BUSINESS_STEP_FUNCTIONS,
    BUSINESS_STEP_STATES,
    QUIET,
    STEP_CALLS,
    business_step_calls,
    failing_steps,
    intercept_steps,
    start_registered_waiter,
    wait_until,
)
from tests.integration.test_faults import failed_by_its_save

# Real seconds: a stopped owner's calls in flight can run this long after its stop.
LONGEST_CALL_SECONDS = 2
# The step held while the others finish: its branch is the one a stop aborts.
HELD_STEP = BUSINESS_STEP_FUNCTIONS[-1]


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    with OfflineStack(
        {"LongestCallSeconds": LONGEST_CALL_SECONDS, "PollIntervalSeconds": 1}, environment=QUIET
    ) as deployed:
        yield deployed


def _states_exited(stack: OfflineStack, execution_arn: str) -> list[str]:
    events = stack.sfn.get_execution_history(executionArn=execution_arn)["events"]
    return [event["stateExitedEventDetails"]["name"] for event in events if "stateExitedEventDetails" in event]


def _stopped_with_one_branch_aborted(
    stack: OfflineStack, execution_input: Any, *, with_waiter: bool = False
) -> tuple[str, str | None]:
    """Start an owner, let every business step but one finish, and stop it: that one branch is aborted.

    With ``with_waiter``, a duplicate is waiting for the owner (its task token registered) when it stops.
    """
    gate = Gate()
    waiter = None
    with intercept_steps(stack, gate, (HELD_STEP,)):
        owner = stack.start_execution(execution_input)
        assert gate.arrived.wait(60), "the owner never reached its held step"
        wait_until(
            lambda: sum(name in BUSINESS_STEP_STATES for name in _states_exited(stack, owner)) == STEP_CALLS - 1,
            message="the owner's other steps to finish",
        )
        if with_waiter:
            waiter = start_registered_waiter(stack, execution_input)
        stack.sfn.stop_execution(executionArn=owner)
        wait_until(
            lambda: any(d.event["detail"]["executionArn"] == owner for d in stack.events.wait_until_delivered()),
            message="the stop's event",
        )
        gate.open()  # its call in flight finishes on its own
    return owner, waiter


def test_an_owner_redriven_while_it_holds_its_record_finishes_the_same_run_and_wakes_its_waiters(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    calls = business_step_calls(stack)
    owner, waiter = _stopped_with_one_branch_aborted(stack, execution_input, with_waiter=True)
    assert waiter is not None
    held = stack.get_record(compute_idempotency_key(execution_input))

    stack.sfn.redrive_execution(executionArn=owner)
    redriven = stack.wait_for(owner, timeout=60)
    woken = stack.wait_for(waiter, timeout=60)

    assert held is not None and (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", owner)
    assert redriven.status == "SUCCEEDED", redriven.cause
    assert woken.status == "SUCCEEDED" and woken.output == redriven.output
    # The held step ran twice (its call was aborted); every other step once: one logical run.
    assert business_step_calls(stack) - calls == STEP_CALLS + 1
    saved = stack.get_record(compute_idempotency_key(execution_input))
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", owner)
    assert "Run the business steps" not in woken.states_entered


def test_a_duplicate_resumes_a_stopped_owner_instead_of_running_the_steps_again(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    calls = business_step_calls(stack)
    owner, _ = _stopped_with_one_branch_aborted(stack, execution_input)

    duplicate = stack.run(execution_input, timeout=90)
    resumed = stack.wait_for(owner, timeout=60)
    described = stack.sfn.describe_execution(executionArn=owner)
    with pytest.raises(ClientError) as later_redrive:
        stack.sfn.redrive_execution(executionArn=owner)

    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert "Run the business steps" not in duplicate.states_entered
    assert resumed.status == "SUCCEEDED" and duplicate.output == resumed.output
    assert described["redriveCount"] == 1
    assert later_redrive.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert business_step_calls(stack) - calls == STEP_CALLS + 1  # the aborted branch again, nothing else
    saved = stack.get_record(compute_idempotency_key(execution_input))
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", owner)


def test_a_stopped_owners_record_outlives_the_redrive_period(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    owner, _ = _stopped_with_one_branch_aborted(stack, execution_input)
    stopped = stack.sfn.describe_execution(executionArn=owner)["stopDate"].timestamp()

    held = stack.get_record(compute_idempotency_key(execution_input))

    assert held is not None and held["executionid"] == owner
    assert held["ttl"] >= stopped + 14 * 24 * 3600
    stack.sfn.redrive_execution(executionArn=owner)  # let it finish: the module's stack is shared
    assert stack.wait_for(owner, timeout=60).status == "SUCCEEDED"


def test_an_owner_that_can_no_longer_be_redriven_is_taken_over_and_never_runs_again(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    owner, _ = _stopped_with_one_branch_aborted(stack, execution_input)
    now = stack.clock
    stack.clock = lambda: now() + datetime.timedelta(days=15)
    try:
        calls = business_step_calls(stack)
        duplicate = stack.run(execution_input, timeout=90)
        with pytest.raises(ClientError) as redrive:
            stack.sfn.redrive_execution(executionArn=owner)
    finally:
        stack.clock = now

    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert "Run the business steps" in duplicate.states_entered
    assert redrive.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert business_step_calls(stack) - calls == STEP_CALLS


def test_a_redrive_of_a_failed_owner_whose_key_another_execution_saved_runs_no_step(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    with failing_steps(stack):
        failed = stack.run(execution_input)
    rerun = stack.run(execution_input, timeout=90)
    calls = business_step_calls(stack)

    stack.sfn.redrive_execution(executionArn=failed.execution_arn)
    redriven = stack.wait_for(failed.execution_arn, timeout=60)

    assert failed.status == "FAILED" and rerun.status == "SUCCEEDED"
    assert redriven.status == "FAILED"
    assert business_step_calls(stack) == calls
    saved = stack.get_record(compute_idempotency_key(execution_input))
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", rerun.execution_arn)


def test_an_owner_whose_save_kept_failing_finishes_its_run_when_redriven(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    calls = business_step_calls(stack)
    owner, recorded = failed_by_its_save(stack, execution_input)

    stack.sfn.redrive_execution(executionArn=owner.execution_arn)
    redriven = stack.wait_for(owner.execution_arn, timeout=60)

    assert recorded is not None and (recorded["executionstatus"], recorded["executionid"]) == (
        "FAILED",
        owner.execution_arn,
    )
    assert redriven.status == "SUCCEEDED", redriven.cause
    assert business_step_calls(stack) - calls == STEP_CALLS  # its steps are kept: only its save ran again
    saved = stack.get_record(compute_idempotency_key(execution_input))
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", owner.execution_arn)


class ReplyLost(Exception):
    """The take's write landed, but its answer never reached the state machine."""


def _take_then_lose_the_reply(handler: Any, event: Any, context: Any) -> Any:
    handler(event, context)
    raise ReplyLost("the take's reply was lost")


def test_an_owner_whose_take_failed_after_it_landed_finishes_its_run_when_redriven(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    calls = business_step_calls(stack)
    with stack.lambdas.intercept("AcquireLockFunction", _take_then_lose_the_reply):
        owner = stack.run(execution_input)
        wait_until(
            lambda: (stack.get_record(key) or {}).get("executionstatus") == "FAILED",
            message="the release to record the failure",
        )
    held = stack.get_record(key)

    stack.sfn.redrive_execution(executionArn=owner.execution_arn)
    redriven = stack.wait_for(owner.execution_arn, timeout=60)

    assert owner.status == "FAILED" and owner.error == "ReplyLost"
    assert held is not None and (held["executionstatus"], held["executionid"]) == ("FAILED", owner.execution_arn)
    assert redriven.status == "SUCCEEDED", redriven.cause
    assert business_step_calls(stack) - calls == STEP_CALLS
    saved = stack.get_record(key)
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", owner.execution_arn)
