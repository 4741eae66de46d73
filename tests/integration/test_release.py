"""An owner that ends without saving (stopped, timed out, failed) does not block its key.

The workflow's ABORTED, TIMED_OUT and FAILED status-change events reach the release function
through the template's EventBridge rule. A stopped execution's Lambda calls run on, so the record
is never deleted: if that execution still holds it, its lease is cut to when those calls can have
ended (``LongestCallSeconds`` after the stop) and its waiters are woken; a look after that asks
Step Functions that the owner is over, and takes the record over.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from emulator import OfflineStack
from emulator.adapters import Gate
from emulator.stack import ExecutionResult
from idempotency.key import compute_idempotency_key
from tests.integration.support import (
    QUIET,
    STEP_CALLS,
    business_step_calls,
    held_owner,
    intercept_steps,
    past_the_redrive_period,
    start_registered_waiter,
    wait_until,
    wait_until_it_waits,
)
from tools.template import PROJECT_ROOT

RELEASE_FUNCTION = "ReleaseAbandonedRecordFunction"


def _invoke_release(
    stack: OfflineStack, execution_arn: str, execution_input: Any, *, include_input: bool = True
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "executionArn": execution_arn,
        "stateMachineArn": stack.state_machine_arn,
        "status": "ABORTED",
        "inputDetails": {"included": include_input},
    }
    if include_input:
        detail["input"] = json.dumps(execution_input)
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change", "detail": detail}
    response = boto3.client("lambda", region_name="us-east-1").invoke(
        FunctionName=stack.physical_id(RELEASE_FUNCTION), Payload=json.dumps(event).encode()
    )
    assert "FunctionError" not in response
    return json.loads(response["Payload"].read())


# Real seconds: Stopping an execution does not stop its Lambda calls, so its key is free only this long after.
LONGEST_CALL_SECONDS = 4


@pytest.fixture(scope="module")
def ended() -> Iterator[OfflineStack]:
    """A stack whose steps' calls last at most LONGEST_CALL_SECONDS (so the tests wait that long, not a minute)."""
    with OfflineStack(
        {"LongestCallSeconds": LONGEST_CALL_SECONDS, "PollIntervalSeconds": 1}, environment=QUIET
    ) as stack:
        yield stack


@pytest.fixture
def owners_past_redrive(ended: OfflineStack) -> Iterator[None]:
    """The ``ended`` stack with Step Functions' clock past the redrive period: stopped owners are taken over."""
    with past_the_redrive_period(ended):
        yield


def _stop_date(stack: OfflineStack, execution_arn: str) -> int:
    """When the execution stopped, in whole seconds rounded up, from its status-change event (published at once, as on
    AWS)."""
    found: list[Any] = []

    def delivered() -> bool:
        found[:] = [
            d for d in stack.events.wait_until_delivered() if d.event["detail"]["executionArn"] == execution_arn
        ]
        return bool(found)

    wait_until(delivered, message=f"the status-change event of {execution_arn}")
    return int(-(-found[-1].event["detail"]["stopDate"] // 1000))


def _steps_started_at(result: ExecutionResult) -> float:
    """When the execution entered its business steps (epoch seconds)."""
    (entered,) = [
        event["timestamp"].timestamp()
        for event in result.history
        if event["type"] == "ParallelStateEntered"
        and event["stateEnteredEventDetails"]["name"] == "Run the business steps"
    ]
    return float(entered)


@pytest.mark.usefixtures("owners_past_redrive")
def test_a_stopped_owner_frees_its_key_only_once_its_calls_in_flight_can_have_ended(
    ended: OfflineStack, unique: str
) -> None:
    stack = ended
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    gate = Gate()
    calls = business_step_calls(stack)
    with intercept_steps(stack, gate):
        owner_arn = stack.start_execution(execution_input)
        # Stop it with every branch of the Parallel state in flight.
        wait_until(lambda: business_step_calls(stack) == calls + STEP_CALLS, message="all the owner's steps to start")
        stack.sfn.stop_execution(executionArn=owner_arn)
        duplicate_arn = stack.start_execution(execution_input)
        stopped = _stop_date(stack, owner_arn)
        held = stack.get_record(key)
        gate.open()  # the calls in flight finish on their own, within LONGEST_CALL_SECONDS
        owner = stack.wait_for(owner_arn)
        duplicate = stack.wait_for(duplicate_arn, timeout=60)
    taken = stack.get_record(key)

    assert owner.status == "ABORTED"
    # Not deleted: the stopped owner still holds it, until its calls can have ended.
    assert held is not None and (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", owner_arn)
    assert held["leaseexpiry"] == stopped + LONGEST_CALL_SECONDS
    assert duplicate.status == "SUCCEEDED", duplicate.cause
    assert "Run the business steps" in duplicate.states_entered
    assert taken is not None and (taken["executionstatus"], taken["executionid"]) == ("SUCCESS", duplicate_arn)
    assert _steps_started_at(duplicate) >= stopped + LONGEST_CALL_SECONDS
    assert business_step_calls(stack) - calls == 2 * STEP_CALLS


@pytest.mark.usefixtures("owners_past_redrive")
def test_an_owner_stopped_while_it_takes_the_record_does_not_block_the_key(ended: OfflineStack, unique: str) -> None:
    stack = ended
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    gate = Gate()
    with stack.lambdas.intercept("AcquireLockFunction", gate):
        owner_arn = stack.start_execution(execution_input)
        assert gate.arrived.wait(60), "the owner never called the take function"
        stack.sfn.stop_execution(executionArn=owner_arn)
        gate.open()  # its take lands (or is refused) after the stop
        owner = stack.wait_for(owner_arn)
        stopped = _stop_date(stack, owner_arn)
    held = stack.get_record(key)
    # The later execution waits out the stopped owner's calls on the functions' clock, moved on once it waits.
    later_arn = stack.start_execution(execution_input)
    wait_until_it_waits(stack, later_arn)
    with stack.functions_clock.moved_on(LONGEST_CALL_SECONDS + 1):
        later = stack.wait_for(later_arn, timeout=60)

    assert owner.status == "ABORTED"
    # Whichever came first, the take or the release, the key is held only until the stop + the calls' bound,
    # never for the whole lease by an execution that is over.
    assert held is not None and (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", owner_arn)
    assert held["leaseexpiry"] <= stopped + LONGEST_CALL_SECONDS
    assert later.status == "SUCCEEDED", later.cause
    assert "Run the business steps" in later.states_entered


class HeldCall:
    """Holds a function's first call until let through, then tells how it ended (it may outlive its execution)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.let_through = threading.Event()
        self.finished = threading.Event()
        self.error: Exception | None = None

    def __call__(self, handler: Any, event: Any, context: Any) -> Any:
        self.arrived.set()
        if not self.let_through.wait(120):
            raise TimeoutError("the held call was never let through")
        try:
            return handler(event, context)
        except Exception as error:
            self.error = error
            raise
        finally:
            self.finished.set()


def test_a_take_held_past_its_stopped_executions_quiet_period_takes_nothing(ended: OfflineStack, unique: str) -> None:
    stack = ended
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    take = HeldCall()
    calls = business_step_calls(stack)
    with stack.lambdas.intercept("AcquireLockFunction", take):
        owner_arn = stack.start_execution(execution_input)
        assert take.arrived.wait(60), "the owner never called the take function"
        stack.sfn.stop_execution(executionArn=owner_arn)
        stopped = _stop_date(stack, owner_arn)
        wait_until(lambda: stack.get_record(key) is not None, message="the release's record of the stopped owner")
        released = stack.get_record(key)
        assert released is not None
        # Let the take through once that record has gone quiet, by the functions' clock (which the
        # later execution reads too).
        with stack.functions_clock.moved_on(max(0.0, float(released["leaseexpiry"]) + 1 - time.time())):
            take.let_through.set()
            assert take.finished.wait(60), "the held take never finished"
            after = stack.get_record(key)
            later = stack.run(execution_input, timeout=60)

    assert (released["executionstatus"], released["executionid"], released["leaseexpiry"]) == (
        "IN_PROGRESS",
        owner_arn,
        stopped + LONGEST_CALL_SECONDS,
    )
    assert type(take.error).__name__ == "IdempotencyExecutionEndedError"
    assert after == released  # neither taken back nor extended for the stopped execution
    assert later.status == "SUCCEEDED", later.cause
    assert business_step_calls(stack) - calls == STEP_CALLS


def test_steps_that_outlast_the_lease_are_not_run_twice_while_the_owner_runs() -> None:
    with OfflineStack({"LockLeaseSeconds": 1}, environment=QUIET) as stack:
        execution_input = {"orderId": "long-steps", "forceFailure": False}
        key = compute_idempotency_key(execution_input)
        with held_owner(stack, execution_input) as (owner_arn, gate):
            first = stack.get_record(key)
            assert first is not None
            time.sleep(2.1)  # DynamoDB's clock is real: let the 1-second lease run out
            duplicate_arn = start_registered_waiter(stack, execution_input)
            extended = stack.get_record(key)
            calls = business_step_calls(stack)
            gate.open()
            owner, duplicate = stack.wait_for(owner_arn), stack.wait_for(duplicate_arn)

    assert extended is not None and extended["executionid"] == owner_arn
    assert extended["leaseexpiry"] > first["leaseexpiry"]  # asked Step Functions: alive, so extended
    assert owner.status == duplicate.status == "SUCCEEDED"
    assert duplicate.output == owner.output
    assert "Run the business steps" not in duplicate.states_entered
    assert business_step_calls(stack) == calls  # nothing ran beside the owner


def test_a_waiter_of_a_stopped_owner_is_woken_and_takes_over_once_the_owners_calls_can_have_ended() -> None:
    # Looks on its own only after 300 s: its wait ending with a message, not a timeout, proves the release woke it.
    parameters = {"PollIntervalSeconds": 300, "LongestCallSeconds": LONGEST_CALL_SECONDS}
    with OfflineStack(parameters, environment=QUIET) as stack, past_the_redrive_period(stack):
        execution_input = {"orderId": "stopped", "forceFailure": False}
        gate = Gate()
        with intercept_steps(stack, gate):
            owner_arn = stack.start_execution(execution_input)
            wait_until(lambda: business_step_calls(stack) == STEP_CALLS, message="all the owner's steps to start")
            waiter_arn = stack.start_execution(execution_input)
            wait_until(lambda: stack.lambdas.invocations("WaitForOwnerFunction") == 1, message="the waiter to register")
            stack.sfn.stop_execution(executionArn=owner_arn)
            gate.open()
            owner = stack.wait_for(owner_arn)
            waiter = stack.wait_for(waiter_arn, timeout=60)
            stopped = _stop_date(stack, owner_arn)
        record = stack.get_record(compute_idempotency_key(execution_input))

    assert owner.status == "ABORTED"
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert "Run the business steps" in waiter.states_entered
    wait_tasks = [event["type"] for event in waiter.history if event["type"] in ("TaskSucceeded", "TaskTimedOut")]
    assert wait_tasks[:2] == ["TaskSucceeded"] * 2  # the take, then the wake-up
    assert record is not None and (record["executionstatus"], record["executionid"]) == ("SUCCESS", waiter_arn)
    assert _steps_started_at(waiter) >= stopped + LONGEST_CALL_SECONDS


def test_a_release_for_a_record_now_owned_by_another_execution_changes_nothing(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        held = stack.get_record(key)
        # A late event about an earlier owner of the same key, e.g. one whose lease was taken over.
        answer = _invoke_release(
            stack, owner_arn.replace(owner_arn.rsplit(":", 1)[1], "earlier-owner"), execution_input
        )
        still_held = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert (answer["released"], answer["key"]) == (False, stack.record_id(key))
    assert still_held == held
    assert owner.status == "SUCCEEDED"


def test_a_release_leaves_a_saved_record_alone(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    result = stack.run(execution_input)
    saved = stack.get_record(compute_idempotency_key(execution_input))

    answer = _invoke_release(stack, result.execution_arn, execution_input)

    assert answer["released"] is False
    assert stack.get_record(compute_idempotency_key(execution_input)) == saved


def test_a_release_reads_the_input_when_the_event_left_it_out(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        # As if the execution had ended: EventBridge omits inputs too large for an event.
        answer = _invoke_release(stack, owner_arn, None, include_input=False)
        released = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert answer["released"] is True and answer["key"] == stack.record_id(key)
    # Never deleted: the lease is cut to when the (supposedly ended) execution's calls can have finished.
    assert released is not None and released["executionid"] == owner_arn and released["leaseexpiry"] == answer["freeAt"]
    assert owner.status == "SUCCEEDED"  # it was running after all: it still owned the record and saved it


def test_failed_executions_reach_the_release_function_and_bad_input_releases_nothing(stack: OfflineStack) -> None:
    invocations = stack.lambdas.invocations(RELEASE_FUNCTION)

    bad = stack.run(input_json="[1, 2]")
    deliveries = stack.events.wait_until_delivered()

    assert bad.status == "FAILED"
    mine = [delivery for delivery in deliveries if delivery.event["detail"]["executionArn"] == bad.execution_arn]
    assert [delivery.payload["released"] for delivery in mine] == [False]
    assert mine[0].payload["reason"] == "IdempotencyInputNotObjectError"
    assert stack.lambdas.invocations(RELEASE_FUNCTION) > invocations


def test_a_waiter_stopped_while_it_waits_is_aborted_at_once_and_leaves_the_record_alone(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, execution_input)
        stack.sfn.stop_execution(executionArn=waiter_arn)
        waiter = stack.wait_for(waiter_arn)
        held = stack.get_record(key)
        gate.open()
        owner = stack.wait_for(owner_arn)

    assert waiter.status == "ABORTED", (waiter.error, waiter.cause)
    assert held is not None and held["executionid"] == owner_arn  # a waiter's end releases nothing
    assert owner.status == "SUCCEEDED"


# The reusable envelope nested around a workflow the tests own (tests/integration/reusable_envelope/).
WRAPPING_TEMPLATE = PROJECT_ROOT / "tests" / "integration" / "reusable_envelope" / "template.yaml"


@pytest.fixture(scope="module")
def wrapping() -> Iterator[OfflineStack]:
    """The envelope around a child workflow, whose calls last at most LONGEST_CALL_SECONDS too."""
    with OfflineStack(
        {"LongestCallSeconds": LONGEST_CALL_SECONDS}, template_path=WRAPPING_TEMPLATE, environment=QUIET
    ) as stack:
        yield stack


def _children(stack: OfflineStack, name: str) -> list[dict[str, Any]]:
    """The wrapped workflow's executions that greeted ``name``, oldest first."""
    arn = stack.physical_id("WrappedWorkflow")
    executions = stack.sfn.list_executions(stateMachineArn=arn)["executions"]
    described = [stack.sfn.describe_execution(executionArn=execution["executionArn"]) for execution in executions]
    mine = [execution for execution in described if json.loads(execution["input"]).get("name") == name]
    return sorted(mine, key=lambda execution: execution["startDate"])


def test_a_parent_stopped_while_its_child_runs_frees_the_key_only_once_the_child_has_ended_too(
    wrapping: OfflineStack, unique: str
) -> None:
    stack = wrapping
    envelope = stack.applications["Envelope"]
    execution_input = {"name": unique}
    gate = Gate()
    with stack.lambdas.intercept("CountedStepFunction", gate):
        parent_arn = envelope.start_execution(execution_input)
        assert gate.arrived.wait(60), "the child never reached its step"
        stack.sfn.stop_execution(executionArn=parent_arn)
        # Step Functions stops the .sync child when its parent's task ends early; its calls run on.
        wait_until(
            lambda: _children(stack, unique)[0]["status"] != "RUNNING",
            message="the child to be stopped with its parent",
        )
        # Past the 14 days neither can be redriven, so the duplicate takes the key over (within them it
        # resumes the parent: test_reusable_envelope_redrive.py), but not before the child's calls ended.
        with past_the_redrive_period(stack):
            duplicate_arn = envelope.start_execution(execution_input)
            gate.open()
            duplicate = stack.wait_for(duplicate_arn, timeout=60)
    first_child, *later = _children(stack, unique)

    assert stack.sfn.describe_execution(executionArn=parent_arn)["status"] == "ABORTED"
    assert first_child["status"] == "ABORTED"
    assert duplicate.status == "SUCCEEDED", duplicate.cause
    # The duplicate started its own child only once the stopped one's calls could have ended.
    (second_child,) = later
    assert second_child["startDate"].timestamp() >= first_child["stopDate"].timestamp() + LONGEST_CALL_SECONDS - 1
