"""Executions that find the record IN_PROGRESS: woken by the owner, looking again on their own, bounded."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
    start_registered_waiter,
    wait_until,
)

pytestmark = pytest.mark.offline_only(reason="holds and counts Lambda calls, overrides parameters")

WAIT_STATE = "Wait for the other execution to finish"
LOOK_AGAIN = "Look at the record again"
WOKEN_PATH = [
    "Take the idempotency record",
    "Is the work done, ours to do, or running elsewhere?",
    WAIT_STATE,
    "Did the other execution finish?",
    "Return the result it saved",
]


def test_waiter_is_woken_by_the_owner_and_returns_its_result_at_once() -> None:
    # In real time (scale 1) the waiter would look again on its own only after 300 s: it can only
    # return within the test by being woken, however slow the machine.
    with OfflineStack({"PollIntervalSeconds": 300}, time_scale=1.0, environment=QUIET) as stack:
        execution_input = {"orderId": "woken", "forceFailure": False}
        with held_owner(stack, execution_input) as (owner_arn, gate):
            waiter_arn = start_registered_waiter(stack, execution_input)
            gate.open()
            owner = stack.wait_for(owner_arn)
            waiter = stack.wait_for(waiter_arn)

    assert owner.status == waiter.status == "SUCCEEDED"
    assert waiter.output == owner.output
    assert waiter.states_entered == WOKEN_PATH
    assert waiter.lambda_tasks == 2  # one look, one registration: no polling


def test_a_lost_wake_up_costs_latency_not_correctness(stack: OfflineStack, unique: str) -> None:
    execution_input = {"orderId": unique, "forceFailure": False}

    def lose_the_token(handler: Any, event: Any, context: Any) -> Any:
        return {"registered": False}  # as if the token never reached the record

    gate = Gate()
    with intercept_steps(stack, gate), stack.lambdas.intercept("WaitForOwnerFunction", lose_the_token):
        owner_arn = stack.start_execution(execution_input)
        assert gate.arrived.wait(10)
        waiter_arn = stack.start_execution(execution_input)
        # The fallback (10 s, 0.1 s here) lets the waiter look again on its own, more than once.
        wait_until(
            lambda: stack.lambdas.invocations("WaitForOwnerFunction") >= 2,
            message="the waiter to look again on its own",
        )
        gate.open()
        owner = stack.wait_for(owner_arn)
        waiter = stack.wait_for(waiter_arn)

    assert owner.status == waiter.status == "SUCCEEDED"
    assert waiter.output == owner.output
    assert LOOK_AGAIN in waiter.states_entered
    assert "Run the business steps" not in waiter.states_entered


class SimulatedStepFailure(Exception):
    """Fails the owner's step under the example step's own error name."""


class FirstCallFails(Gate):
    """Holds the first call until opened, then fails it; later calls (a waiter's rerun) go through.

    Owner and waiters send the same input (a deployment that validates payloads would refuse
    another one), so the owner's failure comes from here rather than from its input.
    """

    def __init__(self) -> None:
        super().__init__()
        self._calls = 0

    def __call__(self, handler: Any, event: Any, context: Any) -> Any:
        self._calls += 1
        if self._calls > 1:
            return handler(event, context)
        self.arrived.set()
        assert self._open.wait(timeout=self._timeout), "the gate was not opened"
        raise SimulatedStepFailure("The example step failed (held, then failed by the test).")


def failing_owner_and_waiter(order_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The owner's and the waiter's input: one request, whose step fails only in the owner (FirstCallFails)."""
    execution_input = {"orderId": order_id, "forceFailure": False}
    return execution_input, dict(execution_input)


@contextlib.contextmanager
def failing_owner(stack: OfflineStack, owner_input: Any) -> Iterator[tuple[str, FirstCallFails]]:
    """An owner held in its step that fails once the gate opens."""
    gate = FirstCallFails()
    with intercept_steps(stack, gate):
        owner_arn = stack.start_execution(owner_input)
        assert gate.arrived.wait(10), "the owner never reached its step"
        try:
            yield owner_arn, gate
        finally:
            gate.open()


def owner_fails_while_a_waiter_waits(stack: OfflineStack, order_id: str) -> tuple[ExecutionResult, ExecutionResult]:
    """Hold an owner just before its failing step fails, register a waiter, then let the owner fail."""
    owner_input, waiter_input = failing_owner_and_waiter(order_id)
    with failing_owner(stack, owner_input) as (owner_arn, gate):
        waiter_arn = start_registered_waiter(stack, waiter_input)
        gate.open()
        return stack.wait_for(owner_arn), stack.wait_for(waiter_arn)


def test_waiter_takes_the_record_when_the_owner_fails(stack: OfflineStack, unique: str) -> None:
    owner, waiter = owner_fails_while_a_waiter_waits(stack, unique)

    assert owner.status == "FAILED" and owner.error == "SimulatedStepFailure"
    assert waiter.status == "SUCCEEDED", waiter.cause
    assert WAIT_STATE in waiter.states_entered
    assert "Run the business steps" in waiter.states_entered
    record = stack.get_record(compute_idempotency_key(failing_owner_and_waiter(unique)[0]))
    assert record is not None
    assert (record["executionstatus"], record["executionid"]) == ("SUCCESS", waiter.execution_arn)


def test_many_waiters_of_a_failed_owner_run_the_steps_again_only_once(stack: OfflineStack, unique: str) -> None:
    owner_input, waiter_input = failing_owner_and_waiter(unique)
    with failing_owner(stack, owner_input) as (owner_arn, gate):
        registered_before = stack.lambdas.invocations("WaitForOwnerFunction")
        waiter_arns = [stack.start_execution(waiter_input) for _ in range(10)]
        wait_until(
            lambda: stack.lambdas.invocations("WaitForOwnerFunction") >= registered_before + 10,
            message="all to register",
        )
        calls_before = business_step_calls(stack)
        gate.open()
        owner = stack.wait_for(owner_arn)
        with ThreadPoolExecutor(max_workers=5) as pool:
            waiters = list(pool.map(stack.wait_for, waiter_arns))

    assert owner.status == "FAILED"
    assert [waiter.status for waiter in waiters] == ["SUCCEEDED"] * 10
    assert sum("Run the business steps" in waiter.states_entered for waiter in waiters) == 1
    # The owner's held call was counted when it arrived; after it, one waiter runs the five steps.
    assert business_step_calls(stack) - calls_before == STEP_CALLS
    assert all(waiter.output == waiters[0].output for waiter in waiters)


def test_with_policy_fail_waiters_fail_with_the_owners_error() -> None:
    with OfflineStack({"WaitersOnFailure": "Fail", "LongestCallSeconds": 2}, environment=QUIET) as stack:
        # The waiter's own input would succeed: it fails only because it follows the owner.
        owner, waiter = owner_fails_while_a_waiter_waits(stack, "fails")
        # Later, the same request fails no more (the test failed the owner's step, not the input).
        later = stack.run(failing_owner_and_waiter("fails")[1])

    assert owner.status == waiter.status == "FAILED"
    assert waiter.error == owner.error == "SimulatedStepFailure"
    assert waiter.cause == owner.cause
    assert "Run the business steps" not in waiter.states_entered
    # A later execution (not a waiter) still takes the FAILED record and runs the steps.
    assert later.status == "SUCCEEDED"
    assert "Run the business steps" in later.states_entered


@pytest.mark.parametrize(("poll_interval", "expected_waits"), [(10, [10, 20]), (5, [5, 10, 15])])
def test_a_wait_that_runs_out_fails_with_a_named_error(poll_interval: int, expected_waits: list[int]) -> None:
    parameters = {"PollIntervalSeconds": poll_interval, "WaitTimeoutSeconds": 30}
    time_scale = 0.01
    with OfflineStack(parameters, time_scale=time_scale, environment=QUIET) as stack:
        execution_input = {"orderId": "held", "forceFailure": False}
        with held_owner(stack, execution_input) as (owner_arn, gate):
            waiter = stack.run(execution_input)
            gate.open()
            owner = stack.wait_for(owner_arn)

        record = stack.get_record(compute_idempotency_key(execution_input))

    assert waiter.status == "FAILED"
    assert waiter.error == "IdempotencyWaitTimeoutError"
    assert "WaitTimeoutSeconds=30" in json.loads(waiter.cause or "{}")["errorMessage"]
    # Each look on its own comes after twice the previous wait, and the waits add up to the bound.
    assert _recheck_intervals(waiter.history) == expected_waits
    for declared, waited in zip(expected_waits, _wait_durations(waiter.history), strict=True):
        assert waited >= declared * time_scale * 0.9
    assert owner.status == "SUCCEEDED"
    assert record is not None and record["executionid"] == owner_arn  # the waiter left the record alone


def test_a_long_wait_keeps_a_short_history() -> None:
    # Half an hour of waiting, scaled to a few seconds; the seed's design would log ~1,000 events.
    parameters = {
        "PollIntervalSeconds": 10,
        "WaitTimeoutSeconds": 1800,
        "ExecutionTimeoutSeconds": 100_000,
        "RecordTtlSeconds": 200_000,
    }
    with OfflineStack(parameters, time_scale=0.001, environment=QUIET) as stack:
        execution_input = {"orderId": "long", "forceFailure": False}
        with held_owner(stack, execution_input) as (owner_arn, gate):
            waiter = stack.run(execution_input, timeout=30)
            gate.open()
            stack.wait_for(owner_arn)

    assert waiter.error == "IdempotencyWaitTimeoutError"
    assert sum(_recheck_intervals(waiter.history)) == 1800
    assert len(waiter.states_entered) < 30
    assert len(waiter.history) < 150  # Step Functions' limit is 25,000


@pytest.mark.parametrize("round_number", range(3))
def test_concurrent_executions_with_one_input_run_the_steps_once(
    stack: OfflineStack, unique: str, round_number: int
) -> None:
    execution_input = {"orderId": unique, "round": round_number, "forceFailure": False}
    calls_before = business_step_calls(stack)

    with ThreadPoolExecutor(max_workers=25) as pool:
        arns = list(pool.map(lambda _: stack.start_execution(execution_input), range(25)))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(stack.wait_for, arns))

    failures = [
        (result.error, result.cause, result.states_entered) for result in results if result.status != "SUCCEEDED"
    ]
    assert not failures
    assert all(result.output == results[0].output for result in results)
    assert business_step_calls(stack) - calls_before == STEP_CALLS
    assert sum("Run the business steps" in result.states_entered for result in results) == 1


def _recheck_intervals(history: list[dict[str, Any]]) -> list[int]:
    """The ``recheckAfterSeconds`` each wait was given, from the input of the wait state."""
    return [
        json.loads(event["stateEnteredEventDetails"]["input"])["idempotency"]["recheckAfterSeconds"]
        for event in history
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == WAIT_STATE
    ]


def _wait_durations(history: list[dict[str, Any]]) -> list[float]:
    entered = [
        event["timestamp"]
        for event in history
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == WAIT_STATE
    ]
    exited = [
        event["timestamp"]
        for event in history
        if event["type"].endswith("StateExited") and event["stateExitedEventDetails"]["name"] == WAIT_STATE
    ]
    if len(exited) < len(entered):  # a wait that timed out leaves by its Catch, with no StateExited
        exited = [event["timestamp"] for event in history if event["type"] == "TaskTimedOut"]
    return [(end - start).total_seconds() for start, end in zip(entered, exited, strict=True)]
