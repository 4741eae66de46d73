"""The user registration example (seed 003): its own app, made idempotent by the nested envelope.

``UserRegistrationWorkflow`` registers a user in three systems in parallel (each call retried),
rolls back and fails when any fails, and publishes a confirmation. The example's template
(``examples/user_registration/template.yaml``) nests the reusable envelope around it, keyed by
``['user-registration', username]``: the same registration event registers once, concurrent
duplicates start one child, and a failed child is recorded with the child's own error. Faults
are injected into the registration function with interceptors.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emulator import ExecutionResult, OfflineStack
from emulator.adapters import Gate, load_module
from idempotency.key import KeyRules, compute_idempotency_key
from scripts import child_envelope
from tests.integration.support import QUIET, queued_messages, subscribe_queue, wait_until
from tools.template import Template

EXAMPLE = Path(__file__).resolve().parent.parent
TEMPLATE = EXAMPLE / "template.yaml"
APPLICATION = "Envelope"
CHILD = "UserRegistrationWorkflow"
REGISTER = "RegisterUserFunction"
ROLLBACK = "RollbackRegistrationFunction"
TOPIC = "NotificationsTopic"
SAMPLE = json.loads((EXAMPLE / "events" / "execution_user_registration.json").read_text(encoding="utf-8"))
CHILD_DEFINITION = json.loads((EXAMPLE / "statemachine" / "user_registration.asl.json").read_text(encoding="utf-8"))
BRANCHES = CHILD_DEFINITION["States"]["Register the user in every system"]["Branches"]
# The example's steps answer in milliseconds: a stopped owner's key is freed after 2 s, not 10.
LONGEST_CALL_SECONDS = 2

_register_module = load_module(Template.load(TEMPLATE).import_roots(REGISTER), "app")
RegistrationRejectedError = _register_module.RegistrationRejectedError
RegistrationSystemUnavailableError = _register_module.RegistrationSystemUnavailableError


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    """The example's own app: its workflow, functions and topic, and the envelope nested around it."""
    with OfflineStack(
        {"LongestCallSeconds": LONGEST_CALL_SECONDS}, template_path=TEMPLATE, environment=QUIET
    ) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def envelope(stack: OfflineStack) -> OfflineStack:
    """The nested envelope: its state machine (where registrations start), table and records."""
    return stack.applications[APPLICATION]


def key_of(envelope: OfflineStack, execution_input: Any) -> str:
    """The record key of an input under the envelope's key expression (IdempotencyKeyJmespath)."""
    rules = KeyRules(key_expression=envelope.parameters["IdempotencyKeyJmespath"])
    return compute_idempotency_key(execution_input, rules)


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
    stack: OfflineStack, envelope: OfflineStack, unique: str, notifications: str
) -> None:
    registers = stack.lambdas.invocations(REGISTER)

    result = envelope.run(registration(unique))

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["username"] == unique
    assert {value["system"] for value in result.output["registrations"].values()} == {
        "ActiveDirectory",
        "Products",
        "Promotions",
    }
    assert stack.lambdas.invocations(REGISTER) - registers == 3
    (child,) = child_executions(stack, result)
    child_description = stack.sfn.describe_execution(executionArn=child["executionArn"])
    # What is stored and returned is the child's output, unchanged.
    assert json.loads(child_description["output"]) == result.output
    child_input = json.loads(child_description["input"])
    assert child_input.pop(child_envelope.STARTED_BY_FIELD) == result.execution_arn
    assert child_input == registration(unique)
    record = envelope.get_record(key_of(envelope, registration(unique)))
    assert record is not None
    assert record["executionstatus"] == "SUCCESS"
    assert json.loads(record["executionresult"]) == result.output
    assert confirmations_for(notifications, unique) == [
        {"event": "UserRegistered", "username": unique, "email": f"{unique}@example.com"}
    ]


def test_a_repeated_registration_event_registers_once(
    stack: OfflineStack, envelope: OfflineStack, unique: str, notifications: str
) -> None:
    first = envelope.run(registration(unique))
    registers = stack.lambdas.invocations(REGISTER)

    repeat = envelope.run(registration(unique))
    # The key is ['user-registration', username]; the example turns payload validation on for the
    # registration's details, so the same username with another phone number is refused instead of
    # answered with the first registration.
    other_phone = envelope.run(registration(unique, phone="999"))

    assert repeat.status == "SUCCEEDED"
    assert repeat.output == first.output
    assert (other_phone.status, other_phone.error) == ("FAILED", "IdempotencyPayloadMismatchError")
    assert stack.lambdas.invocations(REGISTER) == registers
    assert child_executions(stack, repeat) == child_executions(stack, other_phone) == []
    assert len(all_children_for(stack, unique)) == 1
    assert len(confirmations_for(notifications, unique)) == 1


def test_concurrent_duplicate_events_start_one_child(
    stack: OfflineStack, envelope: OfflineStack, unique: str, notifications: str
) -> None:
    gate = Gate()
    registers = stack.lambdas.invocations(REGISTER)
    with stack.lambdas.intercept(REGISTER, gate), ThreadPoolExecutor(max_workers=5) as pool:
        # Hold the first child's registrations until every duplicate has started.
        arns = list(pool.map(lambda _: envelope.start_execution(registration(unique)), range(5)))
        wait_until(gate.arrived.is_set, message="the first child to register")
        gate.open()
        results = list(pool.map(stack.wait_for, arns))

    assert {result.status for result in results} == {"SUCCEEDED"}
    assert all(result.output == results[0].output for result in results)
    assert stack.lambdas.invocations(REGISTER) - registers == 3
    assert len(all_children_for(stack, unique)) == 1
    assert len(confirmations_for(notifications, unique)) == 1


# --------------------------------------------------------------------------- failures, retries, rollback
def test_a_rejected_registration_rolls_back_and_is_recorded_with_the_childs_error(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationRejectedError("Products refuses this user."))

    with stack.lambdas.intercept(REGISTER, products):
        failed = envelope.run(registration(unique))

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
    assert failed.cause is not None and "Products refuses this user." in failed.cause
    record = envelope.get_record(key_of(envelope, registration(unique)))
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", "RegistrationRejectedError")
    assert record["cause"] == failed.cause

    # A FAILED record does not block: the same event registers again, and now succeeds. The child
    # failed on purpose, in its Fail state after the rollback, so it is not resumed (its redrive would
    # rerun only that state): a new child runs with the event as it is now (docs/contract.md, Redrive).
    registrations = stack.lambdas.invocations(REGISTER)
    with stack.functions_clock.moved_on(LONGEST_CALL_SECONDS + 2):  # past the failure's quiet period
        retried = envelope.run(registration(unique))
    assert retried.status == "SUCCEEDED"
    assert len(all_children_for(stack, unique)) == 2
    assert stack.lambdas.invocations(REGISTER) > registrations

    # An operator who redrives the rejected child now reruns its Fail state alone: no system is called.
    registrations, rollbacks = stack.lambdas.invocations(REGISTER), stack.lambdas.invocations(ROLLBACK)
    stack.sfn.redrive_execution(executionArn=child["executionArn"])
    redriven = stack.wait_for(child["executionArn"])
    assert (redriven.status, redriven.error) == ("FAILED", "RegistrationRejectedError")
    assert (stack.lambdas.invocations(REGISTER), stack.lambdas.invocations(ROLLBACK)) == (registrations, rollbacks)


def test_a_system_down_for_a_moment_is_retried_and_the_registration_succeeds(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationSystemUnavailableError("Products did not answer."), times=1)

    with stack.lambdas.intercept(REGISTER, products):
        result = envelope.run(registration(unique))

    assert result.status == "SUCCEEDED", result.cause
    assert products.calls == 2
    assert stack.lambdas.invocations(ROLLBACK) == rollbacks


def test_a_system_down_for_longer_than_the_retries_rolls_back(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    (retry,) = BRANCHES[1]["States"]["Register in Products"]["Retry"]
    rollbacks = stack.lambdas.invocations(ROLLBACK)
    products = FailIn("Products", RegistrationSystemUnavailableError("Products did not answer."))

    with stack.lambdas.intercept(REGISTER, products):
        failed = envelope.run(registration(unique))

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


def test_a_child_stopped_from_outside_is_recorded_as_the_tasks_failure(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    gate = Gate()
    # Stopped while it rolls back (a plain Task): moto stops a Parallel mid-branch less cleanly.
    with (
        stack.lambdas.intercept(REGISTER, FailIn("Products", RegistrationRejectedError("no"))),
        stack.lambdas.intercept(ROLLBACK, gate),
    ):
        arn = envelope.start_execution(registration(unique))
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
    record = envelope.get_record(key_of(envelope, registration(unique)))
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", "States.TaskFailed")
    # A stopped child gives no error of its own: its status is the cause.
    (child,) = all_children_for(stack, unique)
    assert record["cause"] == f"The child execution {child['executionArn']} ended ABORTED."


def test_a_start_under_a_taken_name_is_refused_and_recorded(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    name = f"registration-{unique}"
    # A child already started under the parent's name (as a retried start would find it).
    stack.start_execution(registration(unique), name=name, state_machine=CHILD)

    refused = stack.wait_for(envelope.start_execution(registration(unique), name=name))

    assert (refused.status, refused.error) == ("FAILED", "StepFunctions.ExecutionAlreadyExistsException")
    assert len(all_children_for(stack, unique)) == 1
