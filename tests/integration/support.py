"""Helpers shared by the integration tests."""

from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from moto.dynamodb.exceptions import DynamodbException
from moto.dynamodb.models import DynamoDBBackend

from emulator import OfflineStack
from emulator.adapters import Gate
from emulator.stack import QUIET_FUNCTIONS, REGION, business_step_functions
from scripts.asl_diagram import load_definition
from tools.template import ENVELOPE_STATE_MACHINE, Template

QUIET = QUIET_FUNCTIONS

# What the business steps are is read from the template and the ASL, never from the example steps:
# a project that put its own steps in (docs/examples.md) keeps these tests green.
_TEMPLATE = Template.load()
BUSINESS_STEP_FUNCTIONS = business_step_functions(_TEMPLATE)
BUSINESS_STEPS_STATE = "Run the business steps"


def _business_steps_state() -> dict[str, Any]:
    uri = _TEMPLATE.resources[ENVELOPE_STATE_MACHINE]["Properties"]["DefinitionUri"]
    state: dict[str, Any] = load_definition(_TEMPLATE.root / uri)["States"][BUSINESS_STEPS_STATE]
    return state


def _lambda_tasks(states: dict[str, Any]) -> list[str]:
    """The names of the Lambda-invoking Task states ``states`` holds, branches of nested Parallel states included."""
    names = []
    for name, state in states.items():
        if state.get("Type") == "Task" and str(state.get("Resource", "")).startswith("arn:aws:states:::lambda:invoke"):
            names.append(name)
        for branch in state.get("Branches", []):
            names += _lambda_tasks(branch["States"])
    return names


# The business steps' Lambda Task states, whatever the template's steps are (the recipe replaces them).
BUSINESS_STEP_STATES = frozenset(
    name for branch in _business_steps_state()["Branches"] for name in _lambda_tasks(branch["States"])
)
# How many calls of the business steps' functions one run makes: each Lambda Task state of the
# Parallel's branches is entered once when the steps succeed (no Choice skips one, no Map repeats one).
STEP_CALLS = sum(len(_lambda_tasks(branch["States"])) for branch in _business_steps_state()["Branches"])


def steps_output_shape() -> Any:
    """What a successful run returns, as the Parallel's ``ResultSelector`` shapes it: the names of its
    fields (a set), or, without a ResultSelector, the number of branches (the output is their list)."""
    state = _business_steps_state()
    selector = state.get("ResultSelector")
    if selector is None:
        return len(state["Branches"])
    return {name.removesuffix(".$") for name in selector}


def assert_steps_output(output: Any) -> None:
    """``output`` is what the business steps return, as the Parallel's ``ResultSelector`` shapes it."""
    shape = steps_output_shape()
    if isinstance(shape, int):
        assert isinstance(output, list) and len(output) == shape, output
    else:
        assert isinstance(output, dict) and set(output) == shape, output


class InjectedStepFailure(Exception):
    """A business step made to fail by a test; Step Functions reports it under this class name."""


INJECTED_FAILURE_MESSAGE = "A business step failed because the test made it fail."


def fail_the_call(handler: Any, event: Any, context: Any) -> Any:
    """An interceptor: the call fails with ``InjectedStepFailure`` without running the step."""
    raise InjectedStepFailure(INJECTED_FAILURE_MESSAGE)


@contextlib.contextmanager
def intercept_steps(
    stack: OfflineStack,
    interceptor: Callable[[Any, Any, Any], Any],
    functions: tuple[str, ...] = BUSINESS_STEP_FUNCTIONS,
) -> Iterator[None]:
    """Route every call of the business steps' functions (or of ``functions``) through ``interceptor``."""
    with contextlib.ExitStack() as interceptors:
        for function in functions:
            interceptors.enter_context(stack.lambdas.intercept(function, interceptor))
        yield


@contextlib.contextmanager
def failing_steps(stack: OfflineStack) -> Iterator[None]:
    """While open, one business step function (the template's last) fails every call with
    ``InjectedStepFailure``; the other steps run until the Parallel stops their branches, so how
    many of them are called depends on timing: count the failing step's own calls."""
    with stack.lambdas.intercept(BUSINESS_STEP_FUNCTIONS[-1], fail_the_call):
        yield


@contextlib.contextmanager
def past_the_redrive_period(stack: OfflineStack) -> Iterator[None]:
    """Step Functions' clock moved past the 14 days an ended execution can be redriven: an ended owner
    can never run again, so its record is taken over (tests of the takeover itself; test_redrive.py
    has what happens within those days)."""
    now = stack.clock
    stack.clock = lambda: now() + datetime.timedelta(days=15)
    try:
        yield
    finally:
        stack.clock = now


# The states in which an execution waits for a record another execution holds: polling, or for a wake-up.
WAITING_STATES = frozenset({"Wait before looking again", "Wait for the other execution to finish"})


def wait_until_it_waits(stack: OfflineStack, execution_arn: str) -> None:
    """Until the execution has started to wait for the record's holder (then a test may move the functions' clock)."""

    def waits() -> bool:
        history = stack.sfn.get_execution_history(executionArn=execution_arn)["events"]
        return any(event.get("stateEnteredEventDetails", {}).get("name") in WAITING_STATES for event in history)

    wait_until(waits, message=f"{execution_arn} to wait for the record's holder")


def business_step_calls(stack: OfflineStack) -> int:
    """How many times the business steps' functions have been invoked so far."""
    return sum(stack.lambdas.invocations(name) for name in BUSINESS_STEP_FUNCTIONS)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, message: str = "condition") -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {message}")
        time.sleep(0.01)


# Taken before any stack wraps the backend's methods (the wrappers take ``*args, **kwargs``).
_BACKEND_SIGNATURES = {
    name: inspect.signature(getattr(DynamoDBBackend, name))
    for name in ("get_item", "put_item", "update_item", "delete_item")
}


def dynamodb_call_arguments(
    operation: str, backend: DynamoDBBackend, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The arguments of a call of a DynamoDB backend operation, by parameter name."""
    return _BACKEND_SIGNATURES[operation].bind(backend, *args, **kwargs).arguments


@contextlib.contextmanager
def failing_dynamodb(
    operation: str, error_code: str, times: int, when: Callable[[dict[str, Any]], bool] | None = None
) -> Iterator[list[int]]:
    """Make the next ``times`` calls of a DynamoDB backend operation fail with ``error_code``.

    ``when``, if given, picks the calls to fail: it gets the call's arguments by name (the
    backend method's parameters, e.g. ``expression_attribute_values``). Yields a one-item list
    holding how many injected failures are still to come.
    """
    original = getattr(DynamoDBBackend, operation)
    remaining = [times]
    lock = threading.Lock()

    def faulty(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
        chosen = when is None or when(dynamodb_call_arguments(operation, self, args, kwargs))
        with lock:
            inject = chosen and remaining[0] > 0
            if inject:
                remaining[0] -= 1
        if inject:
            raise DynamodbException(error_code, f"Injected {error_code} for a test")
        return original(self, *args, **kwargs)

    with mock.patch.object(DynamoDBBackend, operation, faulty):
        yield remaining


@contextlib.contextmanager
def held_owner(stack: OfflineStack, execution_input: Any, function: str | None = None) -> Iterator[tuple[str, Gate]]:
    """Start an execution and hold it in its first call of a business step function (of ``function``,
    if given) until the gate opens (on exit at the latest)."""
    gate = Gate()
    functions = BUSINESS_STEP_FUNCTIONS if function is None else (function,)
    with intercept_steps(stack, gate, functions):
        owner_arn = stack.start_execution(execution_input)
        assert gate.arrived.wait(60), f"the owner never called {function}"
        try:
            yield owner_arn, gate
        finally:
            gate.open()


def start_registered_waiter(stack: OfflineStack, execution_input: Any) -> str:
    """Start an execution with the input of a held owner; return once it has left its task token."""
    registered = stack.lambdas.invocations("WaitForOwnerFunction")
    waiter_arn = stack.start_execution(execution_input)
    wait_until(lambda: stack.lambdas.invocations("WaitForOwnerFunction") > registered, message="the waiter to register")
    return waiter_arn


def subscribe_queue(stack: OfflineStack, topic_logical_id: str, queue_name: str) -> str:
    """An SQS queue subscribed to one of the stack's SNS topics (raw delivery); returns its URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=stack.physical_id(topic_logical_id),
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return queue_url


def queued_messages(queue_url: str) -> list[Any]:
    """Every message body (JSON) in the queue, read without deleting (they stay visible)."""
    sqs = boto3.client("sqs", region_name=REGION)
    found: dict[str, Any] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        found.update({message["MessageId"]: json.loads(message["Body"]) for message in batch})
        if len(batch) < 10:
            return list(found.values())
