"""Faults of DynamoDB and Step Functions on the envelope's calls: retried where they happen, never a lost outcome.

Every DynamoDB call of the envelope is made by its Lambda functions, whose SDK retries are off
(``settings.SDK_CONFIG``). The record module retries a throttle or a lost reply in place (four
attempts: each of its requests is safe to repeat); only a fault that outlasts them reaches the
state machine, under the SDK's exception name, where the ASL's ``Retry`` takes over. A wake-up
that Step Functions refuses never fails the owner: the waiter finds the outcome on its own.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ReadTimeoutError
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from emulator import OfflineStack
from emulator.stack import ExecutionResult
from idempotency.key import compute_idempotency_key
from tests.integration.support import (
    QUIET,
    STEP_CALLS,
    business_step_calls,
    dynamodb_call_arguments,
    fail_the_call,
    failing_dynamodb,
    failing_steps,
    held_owner,
    intercept_steps,
    past_the_redrive_period,
    start_registered_waiter,
    wait_until,
    wait_until_it_waits,
)

pytestmark = pytest.mark.offline_only(reason="injects DynamoDB and Step Functions faults into the emulator")

TRANSIENT_ERRORS = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
]
# How many times the record module makes one request before the error reaches the state machine.
ATTEMPTS_IN_PLACE = 4
WOKEN = "Return the result it saved"
FOUND_ON_ITS_OWN = "Return the stored result"
SAVE_FUNCTION = "SaveOutcomeFunction"
RUN_STEPS = "Run the business steps"
TAKE_FUNCTION = "AcquireLockFunction"
# LongestCallSeconds of short_call_stack: how long a failed owner's calls may run on after its stop.
QUIET_SECONDS = 2


def _task_failures(history: list[dict[str, Any]]) -> list[str]:
    return [event["taskFailedEventDetails"]["error"] for event in history if event["type"] == "TaskFailed"]


def _saves_a_result(call: dict[str, Any]) -> bool:
    """The owner's save of SUCCESS (the only update that sets the result)."""
    return ":result" in call["expression_attribute_values"]


def _save_outputs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the save function returned (its ``Payload``), from the owner's history."""
    payloads = []
    for event in history:
        if event["type"] == "TaskSucceeded":
            payload = json.loads(event["taskSucceededEventDetails"]["output"]).get("Payload")
            if isinstance(payload, dict) and "wakeUpsFailed" in payload:
                payloads.append(payload)
    return payloads


@contextlib.contextmanager
def lost_replies(when: Callable[[dict[str, Any]], bool], times: int = 1) -> Iterator[list[int]]:
    """The next ``times`` matching ``UpdateItem`` requests are applied, then their reply is lost (a read timeout).

    Yields a one-item list holding how many lost replies are still to come.
    """
    original = DynamoDBBackend.update_item
    remaining = [times]
    lock = threading.Lock()

    def applied_then_lost(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        applied = original(self, *args, **kwargs)
        with lock:
            lose = remaining[0] > 0 and when(dynamodb_call_arguments("update_item", self, args, kwargs))
            if lose:
                remaining[0] -= 1
        if lose:
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com/")
        return applied

    with mock.patch.object(DynamoDBBackend, "update_item", applied_then_lost):
        yield remaining


@contextlib.contextmanager
def throttled_wake_ups(failures_by_token: dict[str, int]) -> Iterator[dict[str, int]]:
    """``SendTaskSuccess`` to a token of ``failures_by_token`` is throttled that many times (a large number: for good).

    Yields how many throttles each token got.
    """
    original = StepFunctionsParserBackend.send_task_success
    throttled = dict.fromkeys(failures_by_token, 0)
    lock = threading.Lock()

    def send_task_success(self: StepFunctionsParserBackend, task_token: str, outcome: str) -> Any:
        with lock:
            throttle = task_token in failures_by_token and throttled[task_token] < failures_by_token[task_token]
            if throttle:
                throttled[task_token] += 1
        if throttle:
            raise JsonRESTError("ThrottlingException", "Rate exceeded")
        return original(self, task_token, outcome)

    with mock.patch.object(StepFunctionsParserBackend, "send_task_success", send_task_success):
        yield throttled


@contextlib.contextmanager
def recorded_task_tokens(stack: OfflineStack) -> Iterator[dict[str, str]]:
    """The task token each waiting execution handed to the wait function (execution ARN -> its latest token)."""
    tokens: dict[str, str] = {}

    def record(handler: Any, event: Any, context: Any) -> Any:
        tokens[event["executionId"]] = event["taskToken"]
        return handler(event, context)

    with stack.lambdas.intercept("WaitForOwnerFunction", record):
        yield tokens


@pytest.fixture(scope="module")
def patient_stack() -> Iterator[OfflineStack]:
    """Waiters look on their own only after 600 s (6 s here): a waiter that returns the saved result sooner was
    woken."""
    with OfflineStack({"PollIntervalSeconds": 600, "LockLeaseSeconds": 600}, environment=QUIET) as stack:
        yield stack


@pytest.fixture(scope="module")
def short_call_stack() -> Iterator[OfflineStack]:
    """A failed owner's calls can run 2 s after it stopped (LongestCallSeconds), with the other bounds coherent.

    LongestCallSeconds is real time (the functions read the clock), while waits are scaled (1500 s
    of waiting last 15 s here): the wait bound must stay far longer than the calls' bound in real time.
    """
    parameters = {
        "LongestCallSeconds": QUIET_SECONDS,
        "ExecutionTimeoutSeconds": 2000,
        "RecordTtlSeconds": 3600,
        "WaitTimeoutSeconds": 1500,
    }
    with OfflineStack(parameters, environment=QUIET) as stack:
        yield stack


# --------------------------------------------------------------------------- retried in place
@pytest.mark.parametrize("error_code", TRANSIENT_ERRORS)
def test_a_few_transient_errors_on_the_save_are_retried_in_place(
    stack: OfflineStack, unique: str, error_code: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    saves = stack.lambdas.invocations(SAVE_FUNCTION)
    with failing_dynamodb("update_item", error_code, times=ATTEMPTS_IN_PLACE - 1, when=_saves_a_result) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == []  # the state machine never saw them
    assert stack.lambdas.invocations(SAVE_FUNCTION) - saves == 1
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


@pytest.mark.parametrize(
    ("operation", "error_code"),
    [("get_item", "ThrottlingException"), ("put_item", "ProvisionedThroughputExceededException")],
)
def test_a_few_transient_errors_on_the_take_are_retried_in_place(
    stack: OfflineStack, unique: str, operation: str, error_code: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    takes = stack.lambdas.invocations(TAKE_FUNCTION)
    with failing_dynamodb(operation, error_code, times=ATTEMPTS_IN_PLACE - 1) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == []
    assert stack.lambdas.invocations(TAKE_FUNCTION) - takes == 1
    assert "Run the business steps" in result.states_entered
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_recording_a_failure_is_retried_in_place_on_throttling(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}

    def records_the_failure(call: dict[str, Any]) -> bool:
        return ":error" in call["expression_attribute_values"]

    with (
        failing_dynamodb(
            "update_item", "ThrottlingException", times=ATTEMPTS_IN_PLACE - 1, when=records_the_failure
        ) as remaining,
        failing_steps(stack),
    ):
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "FAILED"
    assert result.error == "InjectedStepFailure"  # the steps' error, not the throttling
    assert "ThrottlingException" not in _task_failures(result.history)
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", "InjectedStepFailure")


@pytest.mark.parametrize("error_code", ["ThrottlingException", "InternalServerError"])
def test_a_save_failing_more_often_than_the_retries_in_place_is_retried_by_the_state_machine(
    stack: OfflineStack, unique: str, error_code: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    saves = stack.lambdas.invocations(SAVE_FUNCTION)
    with failing_dynamodb("update_item", error_code, times=ATTEMPTS_IN_PLACE + 1, when=_saves_a_result) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == [
        error_code
    ]  # one invocation used up its attempts; the ASL's Retry made another
    assert stack.lambdas.invocations(SAVE_FUNCTION) - saves == 2
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


def test_a_take_failing_more_often_than_the_retries_in_place_is_retried_by_the_state_machine(
    stack: OfflineStack, unique: str
) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}
    calls = business_step_calls(stack)
    with failing_dynamodb(
        "put_item", "ProvisionedThroughputExceededException", times=ATTEMPTS_IN_PLACE + 1
    ) as remaining:
        result = stack.run(execution_input)

    assert remaining == [0]
    assert result.status == "SUCCEEDED", result.cause
    assert _task_failures(result.history) == ["ProvisionedThroughputExceededException"]
    assert business_step_calls(stack) - calls == STEP_CALLS
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"


# --------------------------------------------------------------------------- a lost reply
def test_a_save_whose_reply_is_lost_succeeds_and_wakes_the_waiters(patient_stack: OfflineStack, unique: str) -> None:
    stack = patient_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    saves = stack.lambdas.invocations(SAVE_FUNCTION)
    with held_owner(stack, execution_input) as (owner_arn, gate):
        waiter_arns = [start_registered_waiter(stack, execution_input) for _ in range(2)]
        with lost_replies(_saves_a_result) as remaining:
            gate.open()
            owner = stack.wait_for(owner_arn)
    waiters = [stack.wait_for(arn) for arn in waiter_arns]

    assert remaining == [0]  # the save landed and its reply was lost
    assert owner.status == "SUCCEEDED", owner.cause
    assert _task_failures(owner.history) == []
    assert stack.lambdas.invocations(SAVE_FUNCTION) - saves == 1  # retried in place, not by the state machine
    assert [save["wokenWaiters"] for save in _save_outputs(owner.history)] == [2]
    record = stack.get_record(compute_idempotency_key(execution_input))
    assert record is not None and record["executionstatus"] == "SUCCESS"
    assert json.loads(record["executionresult"]) == owner.output
    for waiter in waiters:
        assert waiter.status == "SUCCEEDED", waiter.cause
        assert waiter.output == owner.output
        assert WOKEN in waiter.states_entered  # woken by the owner, not by its own look after 6 s


# --------------------------------------------------------------------------- wake-ups refused by Step Functions
def test_a_throttled_wake_up_fails_neither_the_owner_nor_the_other_waiters(
    patient_stack: OfflineStack, unique: str
) -> None:
    stack = patient_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    calls = business_step_calls(stack)
    with recorded_task_tokens(stack) as tokens, held_owner(stack, execution_input) as (owner_arn, gate):
        once, for_good, untouched = (start_registered_waiter(stack, execution_input) for _ in range(3))
        wait_until(lambda: {once, for_good, untouched} <= set(tokens), message="the waiters' tokens")
        with throttled_wake_ups({tokens[once]: 1, tokens[for_good]: 1_000}) as throttled:
            gate.open()
            owner = stack.wait_for(owner_arn)
    results: dict[str, ExecutionResult] = {arn: stack.wait_for(arn) for arn in (once, for_good, untouched)}

    assert throttled[tokens[once]] == 1 and throttled[tokens[for_good]] > 1
    assert owner.status == "SUCCEEDED", owner.cause
    assert _task_failures(owner.history) == []
    assert _save_outputs(owner.history) == [{"status": "SUCCESS", "wokenWaiters": 2, "wakeUpsFailed": 1}]
    for arn, waiter in results.items():
        assert waiter.status == "SUCCEEDED", (arn, waiter.cause)
        assert waiter.output == owner.output
    assert WOKEN in results[once].states_entered  # its throttled wake-up was sent again
    assert WOKEN in results[untouched].states_entered
    assert WOKEN not in results[for_good].states_entered
    assert FOUND_ON_ITS_OWN in results[for_good].states_entered  # it looked again when its wait ran out
    assert business_step_calls(stack) - calls == STEP_CALLS


# --------------------------------------------------------------------------- a save that keeps failing
def failed_by_its_save(stack: OfflineStack, execution_input: Any) -> tuple[ExecutionResult, dict[str, Any] | None]:
    """Run an owner whose save of its result always fails; return it and its record once the
    release function (reached by the FAILED status-change event) has recorded the failure."""
    key = compute_idempotency_key(execution_input)
    with failing_dynamodb("update_item", "ThrottlingException", times=1_000_000, when=_saves_a_result):
        owner = stack.run(execution_input)
        wait_until(
            lambda: (stack.get_record(key) or {}).get("executionstatus") == "FAILED",
            message="the release to record the failure",
        )
    return owner, stack.get_record(key)


def test_a_save_that_keeps_failing_is_recorded_failed_and_the_next_run_resumes_the_owner_once_its_calls_can_have_ended(
    short_call_stack: OfflineStack, unique: str
) -> None:
    stack = short_call_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    calls = business_step_calls(stack)
    owner, record = failed_by_its_save(stack, execution_input)
    stopped = stack.sfn.describe_execution(executionArn=owner.execution_arn)["stopDate"].timestamp()

    assert owner.status == "FAILED"
    assert owner.error == "ThrottlingException"
    assert record is not None
    assert (record["executionstatus"], record["executionid"], record["error"]) == (
        "FAILED",
        owner.execution_arn,
        "ThrottlingException",
    )
    # Not free before the owner's calls in flight can have ended: LongestCallSeconds after it stopped.
    assert record["leaseexpiry"] >= int(stopped) + QUIET_SECONDS

    # The owner's steps ran; Step Functions can still redrive it: the next execution resumes it
    # (its save runs again and lands) instead of running the steps a second time. It waits out the
    # owner's quiet period on the functions' clock, moved on once it waits.
    rerun_arn = stack.start_execution(execution_input)
    wait_until_it_waits(stack, rerun_arn)
    with stack.functions_clock.moved_on(QUIET_SECONDS + 1):
        rerun = stack.wait_for(rerun_arn, timeout=90)
    resumed = stack.wait_for(owner.execution_arn, timeout=60)

    assert rerun.status == "SUCCEEDED", rerun.cause
    assert "Run the business steps" not in rerun.states_entered
    assert resumed.status == "SUCCEEDED" and rerun.output == resumed.output
    assert business_step_calls(stack) - calls == STEP_CALLS
    saved = stack.get_record(key)
    assert saved is not None and (saved["executionstatus"], saved["executionid"]) == ("SUCCESS", owner.execution_arn)
    assert "error" not in saved and "endedunsaved" not in saved


def test_a_save_and_a_release_that_keep_failing_leave_a_lease_taken_over_once_the_owner_has_ended() -> None:
    parameters = {"LockLeaseSeconds": 1, "LongestCallSeconds": 1}
    # Past the redrive period: the owner can never run again, so its record is taken over.
    with OfflineStack(parameters, environment=QUIET) as stack, past_the_redrive_period(stack):
        execution_input = {"orderId": "unlucky", "forceFailure": False}
        key = compute_idempotency_key(execution_input)
        with failing_dynamodb("update_item", "ThrottlingException", times=1_000_000):
            owner = stack.run(execution_input)
            deliveries = stack.events.wait_until_delivered()
        held = stack.get_record(key)
        stopped = stack.sfn.describe_execution(executionArn=owner.execution_arn)["stopDate"].timestamp()
        first_step_at: list[float] = []

        def note_time(handler: Any, event: Any, context: Any) -> Any:
            first_step_at.append(time.time())
            return handler(event, context)

        with intercept_steps(stack, note_time):
            rerun = stack.run(execution_input)

    assert owner.status == "FAILED"
    assert [delivery.errored for delivery in deliveries] == [True]  # the release failed too
    assert held is not None
    assert (held["executionstatus"], held["executionid"]) == ("IN_PROGRESS", owner.execution_arn)
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert "Run the business steps" in rerun.states_entered
    # Taken over only once Step Functions said the owner ended, and its calls could have ended too.
    assert min(first_step_at) >= int(stopped) + 1


def test_a_duplicate_of_a_failed_owner_waits_out_its_calls_without_being_told_the_record_changed(
    short_call_stack: OfflineStack, unique: str
) -> None:
    stack = short_call_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    owner, record = failed_by_its_save(stack, execution_input)
    assert owner.status == "FAILED" and record is not None and record["executionstatus"] == "FAILED"
    # The release dated the quiet period from the owner's stop; on a busy machine it may have run out
    # already. Pushed a minute ahead, the rerun is sure to start while the owner's calls may still run;
    # once it waits, the functions' clock is moved past it.
    quiet_until = max(int(record["leaseexpiry"]), int(time.time()) + 60)
    stack.dynamodb.update_item(
        TableName=stack.table_name,
        Key={"id": {"S": record["id"]}},
        UpdateExpression="SET leaseexpiry = :quiet_until",
        ExpressionAttributeValues={":quiet_until": {"N": str(quiet_until)}},
    )

    rerun_arn = stack.start_execution(execution_input)
    wait_until_it_waits(stack, rerun_arn)
    with stack.functions_clock.moved_on(quiet_until - time.time() + 1):
        rerun = stack.wait_for(rerun_arn)

    assert rerun.status == "SUCCEEDED", rerun.cause
    # The record stayed as it was (FAILED, the same owner, the same lease) until the rerun took it:
    # nothing changed that a wake-up could report, so the duplicate waits for the lease, not in a loop
    # of waits that wake themselves at once (each a Lambda call, a write and state transitions on AWS).
    outputs = [_task_output(event) for event in rerun.history if event["type"] == "TaskSucceeded"]
    assert outputs[0]["Payload"]["outcome"] == "BUSY"  # it did find the record quiet, and waited
    assert [output for output in outputs if output.get("outcome") == "RECORD_CHANGED"] == []


def _task_output(event: dict[str, Any]) -> dict[str, Any]:
    output = json.loads(event["taskSucceededEventDetails"]["output"])
    return output if isinstance(output, dict) else {}


def test_a_failure_caught_while_other_steps_still_run_keeps_the_key_until_their_calls_can_have_ended(
    short_call_stack: OfflineStack, unique: str
) -> None:
    stack = short_call_stack
    execution_input = {"orderId": unique, "forceFailure": False}
    key = compute_idempotency_key(execution_input)
    release_owner_calls = threading.Event()
    lock = threading.Lock()
    seen: list[float] = []  # when each call of a business step started, in order

    def hold_the_owners_calls(handler: Any, event: Any, context: Any) -> Any:
        # The owner's calls are held but its last to start, which fails at once; the rerun's calls fail.
        with lock:
            seen.append(time.time())
            held = len(seen) < STEP_CALLS
        if held:
            release_owner_calls.wait(30)
            return handler(event, context)
        return fail_the_call(handler, event, context)

    with intercept_steps(stack, hold_the_owners_calls):
        try:
            owner_arn = stack.start_execution(execution_input)
            wait_until(lambda: len(seen) >= STEP_CALLS, message="the owner's steps to start")
            owner = stack.wait_for(owner_arn)  # fails while its other steps are still in flight
            record = stack.get_record(key)
            rerun = stack.run(execution_input)
        finally:
            release_owner_calls.set()
    stopped = stack.sfn.describe_execution(executionArn=owner.execution_arn)["stopDate"].timestamp()

    assert (owner.status, owner.error) == ("FAILED", "InjectedStepFailure")
    assert record is not None and record["executionstatus"] == "FAILED"
    # Step Functions does not cancel the owner's other branches' Lambda calls: the key stays held
    # until they can have ended (LongestCallSeconds after the owner stopped), then runs again.
    # (at least LongestCallSeconds after the failure was recorded, which came after the owner's last call started)
    assert record.get("leaseexpiry", 0) >= seen[STEP_CALLS - 1] + QUIET_SECONDS
    assert stopped >= seen[STEP_CALLS - 1]
    assert rerun.status == "FAILED" and RUN_STEPS in rerun.states_entered
    assert min(seen[STEP_CALLS:]) >= record["leaseexpiry"]
