"""The user registration example (seed 003), alone and inside the envelope around a child workflow.

``UserRegistrationWorkflow`` registers a user in three systems in parallel (each call retried),
rolls back and fails when any fails, and publishes a confirmation. ``IdempotentUserRegistrationWorkflow``
is the envelope (generated from the envelope's own ASL) around it: the same registration event
registers once, concurrent duplicates start one child, and a failed child is recorded with the
child's own error. Faults are injected into the registration function with interceptors.
"""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from emulator import ExecutionResult, OfflineStack
from emulator.adapters import load_module
from emulator.template import PROJECT_ROOT, Template
from scripts import child_envelope
from tests.integration.support import Gate, compute_idempotency_key, queued_messages, subscribe_queue, wait_until

pytestmark = pytest.mark.offline_only(reason="intercepts and counts Lambda calls of the example")

ENVELOPE = "IdempotentUserRegistrationWorkflow"
CHILD = "UserRegistrationWorkflow"
REGISTER = "RegisterUserFunction"
ROLLBACK = "RollbackRegistrationFunction"
TOPIC = "ExampleNotificationsTopic"
SAMPLE = json.loads((PROJECT_ROOT / "events" / "execution_user_registration.json").read_text(encoding="utf-8"))
CHILD_DEFINITION = json.loads((PROJECT_ROOT / "statemachine" / "user_registration.asl.json").read_text(encoding="utf-8"))
BRANCHES = CHILD_DEFINITION["States"]["Register the user in every system"]["Branches"]

_register_module = load_module(Template.load().import_roots(REGISTER), "app")
RegistrationRejectedError = _register_module.RegistrationRejectedError
RegistrationSystemUnavailableError = _register_module.RegistrationSystemUnavailableError


@pytest.fixture(scope="module")
def notifications(stack: OfflineStack) -> str:
    """An SQS queue subscribed to the examples' topic, as an e-mail sender would be."""
    return subscribe_queue(stack, TOPIC, "registration-confirmations")


def confirmations_for(queue_url: str, username: str) -> list[dict[str, Any]]:
    """The confirmation messages published so far for ``username``."""
    return [message for message in queued_messages(queue_url) if message.get("username") == username]


def registration(username: str, **changes: Any) -> dict[str, Any]:
    """The sample registration event for another user."""
    return {**SAMPLE, "username": username, "email": f"{username}@example.com", **changes}


def child_executions(stack: OfflineStack, parent: ExecutionResult) -> list[dict[str, Any]]:
    """The children started by ``parent``: they are named after it."""
    name = parent.execution_arn.rsplit(":", 1)[1]
    executions = stack.sfn.list_executions(stateMachineArn=stack.physical_id(CHILD))["executions"]
    return [execution for execution in executions if execution["name"] == name]


def all_children_for(stack: OfflineStack, username: str) -> list[dict[str, Any]]:
    executions = stack.sfn.list_executions(stateMachineArn=stack.physical_id(CHILD))["executions"]
    inputs = [json.loads(stack.sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]
    return [execution for execution, given in zip(executions, inputs, strict=True) if given.get("username") == username]


class FailIn:
    """Interceptor: fails the registration in one system, ``times`` times, with ``error``."""

    def __init__(self, system: str, error: Exception, times: int = 10**6) -> None:
        self.system, self.error, self.remaining = system, error, times
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, handler: Any, event: Any, context: Any) -> Any:
        if event.get("system") == self.system:
            with self._lock:
                self.calls += 1
                fail = self.remaining > 0
                self.remaining -= 1
            if fail:
                raise self.error
        return handler(event, context)


# --------------------------------------------------------------------------- once per event
def test_a_registration_runs_the_child_once_and_returns_its_output(
    stack: OfflineStack, unique: str, notifications: str
) -> None:
    registers = stack.lambdas.invocations(REGISTER)

    result = stack.run(registration(unique), state_machine=ENVELOPE)

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["username"] == unique
    assert {value["system"] for value in result.output["registrations"].values()} == {"ActiveDirectory", "Products", "Promotions"}
    assert stack.lambdas.invocations(REGISTER) - registers == 3
    (child,) = child_executions(stack, result)
    child_description = stack.sfn.describe_execution(executionArn=child["executionArn"])
    # What is stored and returned is the child's output, unchanged.
    assert json.loads(child_description["output"]) == result.output
    child_input = json.loads(child_description["input"])
    assert child_input.pop(child_envelope.STARTED_BY_FIELD) == result.execution_arn
    assert child_input == registration(unique)
    record = stack.get_record(compute_idempotency_key(registration(unique)), ENVELOPE)
    assert record["executionstatus"] == "SUCCESS"
    assert json.loads(record["executionresult"]) == result.output
    assert confirmations_for(notifications, unique) == [
        {"event": "UserRegistered", "username": unique, "email": f"{unique}@example.com"}
    ]


def test_a_repeated_registration_event_registers_once(stack: OfflineStack, unique: str, notifications: str) -> None:
    first = stack.run(registration(unique), state_machine=ENVELOPE)
    registers = stack.lambdas.invocations(REGISTER)

    repeat = stack.run(registration(unique), state_machine=ENVELOPE)
    # The key is ['user-registration', username]; payload validation (on by default) refuses the
    # same username with another phone number instead of answering with the first registration.
    other_phone = stack.run(registration(unique, phone="999"), state_machine=ENVELOPE)

    assert repeat.status == "SUCCEEDED"
    assert repeat.output == first.output
    assert (other_phone.status, other_phone.error) == ("FAILED", "IdempotencyPayloadMismatchError")
    assert stack.lambdas.invocations(REGISTER) == registers
    assert child_executions(stack, repeat) == child_executions(stack, other_phone) == []
    assert len(all_children_for(stack, unique)) == 1
    assert len(confirmations_for(notifications, unique)) == 1


def test_concurrent_duplicate_events_start_one_child(stack: OfflineStack, unique: str, notifications: str) -> None:
    gate = Gate()
    registers = stack.lambdas.invocations(REGISTER)
    with stack.lambdas.intercept(REGISTER, gate), ThreadPoolExecutor(max_workers=5) as pool:
        # Hold the first child's registrations until every duplicate has started.
        arns = list(pool.map(lambda _: stack.start_execution(registration(unique), state_machine=ENVELOPE), range(5)))
        wait_until(gate.arrived.is_set, message="the first child to register")
        gate.open()
        results = list(pool.map(stack.wait_for, arns))

    assert {result.status for result in results} == {"SUCCEEDED"}
    assert all(result.output == results[0].output for result in results)
    assert stack.lambdas.invocations(REGISTER) - registers == 3
    assert len(all_children_for(stack, unique)) == 1
    assert len(confirmations_for(notifications, unique)) == 1


# --------------------------------------------------------------------------- failures, retries, rollback
def test_a_rejected_registration_rolls_back_and_is_recorded_with_the_childs_error(stack: OfflineStack, unique: str) -> None:
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationRejectedError("Products refuses this user."))

    with stack.lambdas.intercept(REGISTER, products):
        failed = stack.run(registration(unique), state_machine=ENVELOPE)

    # A rejection is not retried; the rollback runs once and the child fails with the error.
    assert products.calls == 1
    assert stack.lambdas.invocations(ROLLBACK) - rollbacks == 1
    (child,) = child_executions(stack, failed)
    assert child["status"] == "FAILED"
    child_history = stack.wait_for(child["executionArn"])
    assert "Roll the registration back" in child_history.states_entered
    # The envelope records and fails with the child's own error, not States.TaskFailed.
    assert failed.status == "FAILED"
    assert failed.error == "RegistrationRejectedError"
    assert "Products refuses this user." in failed.cause
    record = stack.get_record(compute_idempotency_key(registration(unique)), ENVELOPE)
    assert (record["executionstatus"], record["error"]) == ("FAILED", "RegistrationRejectedError")
    assert record["cause"] == failed.cause

    # A FAILED record does not block: the same event registers again, and now succeeds.
    retried = stack.run(registration(unique), state_machine=ENVELOPE)
    assert retried.status == "SUCCEEDED"
    assert len(all_children_for(stack, unique)) == 2


def test_a_system_down_for_a_moment_is_retried_and_the_registration_succeeds(stack: OfflineStack, unique: str) -> None:
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationSystemUnavailableError("Products did not answer."), times=1)

    with stack.lambdas.intercept(REGISTER, products):
        result = stack.run(registration(unique), state_machine=ENVELOPE)

    assert result.status == "SUCCEEDED", result.cause
    assert products.calls == 2
    assert stack.lambdas.invocations(ROLLBACK) == rollbacks


def test_a_system_down_for_longer_than_the_retries_rolls_back(stack: OfflineStack, unique: str) -> None:
    (retry,) = BRANCHES[1]["States"]["Register in Products"]["Retry"]
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationSystemUnavailableError("Products did not answer."))

    with stack.lambdas.intercept(REGISTER, products):
        failed = stack.run(registration(unique), state_machine=ENVELOPE)

    assert products.calls == 1 + retry["MaxAttempts"]
    assert stack.lambdas.invocations(ROLLBACK) - rollbacks == 1
    assert (failed.status, failed.error) == ("FAILED", "RegistrationSystemUnavailableError")
    (child,) = child_executions(stack, failed)
    attempts = [
        event["timestamp"]
        for event in stack.wait_for(child["executionArn"]).history
        if event["type"] == "TaskScheduled"
        and json.loads(event["taskScheduledEventDetails"]["parameters"])["Payload"].get("system") == "Products"
    ]
    # Retry n waits IntervalSeconds * BackoffRate^(n-1) (10 s, then 15 s), scaled down by the emulator.
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) == retry["MaxAttempts"]
    for retry_number, gap in enumerate(gaps):
        assert gap >= retry["IntervalSeconds"] * retry["BackoffRate"] ** retry_number * stack.time_scale


def test_a_child_stopped_from_outside_is_recorded_as_the_tasks_failure(stack: OfflineStack, unique: str) -> None:
    gate = Gate()
    # Stopped while it rolls back (a plain Task): moto stops a Parallel mid-branch less cleanly.
    with stack.lambdas.intercept(REGISTER, FailIn("Products", RegistrationRejectedError("no"))), stack.lambdas.intercept(ROLLBACK, gate):
        arn = stack.start_execution(registration(unique), state_machine=ENVELOPE)
        wait_until(gate.arrived.is_set, message="the child to roll back")
        parent_name = arn.rsplit(":", 1)[1]
        child_arn = next(
            e["executionArn"]
            for e in stack.sfn.list_executions(stateMachineArn=stack.physical_id(CHILD))["executions"]
            if e["name"] == parent_name
        )
        stack.sfn.stop_execution(executionArn=child_arn)
        gate.open()
        stopped = stack.wait_for(arn)

    # A stopped child gives no error of its own: the task's failure is recorded as it is, with
    # the child's description as the cause. (Re-raising a "States." error from the Fail state is
    # refused by moto's interpreter, so the execution's own error name is not asserted here.)
    assert stopped.status == "FAILED"
    record = stack.get_record(compute_idempotency_key(registration(unique)), ENVELOPE)
    assert (record["executionstatus"], record["error"]) == ("FAILED", "States.TaskFailed")
    # A stopped child gives no error of its own: its status is the cause.
    (child,) = all_children_for(stack, unique)
    assert record["cause"] == f"The child execution {child['executionArn']} ended ABORTED."


def test_a_start_under_a_taken_name_is_refused_and_recorded(stack: OfflineStack, unique: str) -> None:
    name = f"registration-{unique}"
    # A child already started under the parent's name (as a retried start would find it).
    stack.start_execution(registration(unique), name=name, state_machine=CHILD)

    refused = stack.wait_for(stack.start_execution(registration(unique), name=name, state_machine=ENVELOPE))

    assert (refused.status, refused.error) == ("FAILED", "StepFunctions.ExecutionAlreadyExistsException")
    assert len(all_children_for(stack, unique)) == 1


# --------------------------------------------------------------------------- what the variant costs
def _top_level(result: ExecutionResult, definition: dict[str, Any]) -> list[str]:
    return [name for name in result.states_entered if name in definition["States"]]


def test_what_the_child_variant_costs_in_transitions(stack: OfflineStack, unique: str) -> None:
    """Measured from the histories: the envelope's own states, inline and around a child."""
    envelope = child_envelope.load()
    variant = child_envelope.derive(envelope)
    inline = stack.run({"orderId": unique, "forceFailure": False})
    fresh = stack.run(registration(unique), state_machine=ENVELOPE)
    (child,) = child_executions(stack, fresh)
    child_states = stack.wait_for(child["executionArn"]).states_entered

    inline_envelope, variant_envelope = _top_level(inline, envelope), _top_level(fresh, variant)
    # Inline, the protected work is one state (the Parallel) around the steps; here it is a chain
    # of three (link, run the child, take its output) around the child's own states.
    assert len(variant_envelope) - len(inline_envelope) == 2
    assert [name for name in inline_envelope if name != child_envelope.PROTECTED_WORK] == [
        name for name in variant_envelope if name not in (child_envelope.LINK, child_envelope.RUN_CHILD, child_envelope.TAKE_OUTPUT)
    ]
    assert len(child_states) == 6  # Parallel, 3 registrations, confirmation, output

    # A hit costs the same: the child is never started.
    hit = stack.run(registration(unique), state_machine=ENVELOPE)
    inline_hit = stack.run({"orderId": unique, "forceFailure": False})
    assert len(hit.states_entered) == len(inline_hit.states_entered) == 3

    # A failure: the chain also reads the child's own error out of the task's failure (four states).
    other = f"{unique}-failing"
    inline_failure = stack.run({"orderId": other, "forceFailure": True})
    with stack.lambdas.intercept(REGISTER, FailIn("Products", RegistrationRejectedError("Products refuses."))):
        failure = stack.run(registration(other), state_machine=ENVELOPE)
    assert len(_top_level(failure, variant)) - len(_top_level(inline_failure, envelope)) == 5
