"""``immediate_stops``: StopExecution ends the execution at once; a Lambda call in flight runs on by itself."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch as mock_patch

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from emulator.adapters import (
    Gate,
    immediate_stops,
    outcome_before_status,
    scaled_waits,
    timeouts_evaluated_once_stopped,
)
from emulator.events import EventBus, execution_status_events
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task, status_changes_of  # noqa: F401  (the cloud fixture)


class HeldStep:
    """A Lambda step held on a gate; once let through it records that it ran to its end."""

    def __init__(self, cloud: Cloud) -> None:
        self.gate = Gate()
        self.finished = threading.Event()
        self.arn = cloud.function(self._handler, name="held-step")
        # Kept: a dropped context manager would be collected and take the gate off at once.
        self._held = cloud.registry.intercept("held-step", self.gate)
        self._held.__enter__()

    def _handler(self, event: Any, context: Any) -> Any:
        self.finished.set()  # stands for the step's own writes (DynamoDB, ...)
        return {"done": True}


@pytest.fixture
def bus(cloud: Cloud) -> Iterator[EventBus]:
    events = EventBus(region="us-east-1", account_id="123456789012")
    with execution_status_events(events):
        yield events


@pytest.fixture
def recorded(bus: EventBus) -> list[dict[str, Any]]:
    """Every status-change event, as published (the bus has no rules: recorded at publication)."""
    return status_changes_of(bus)


def _held_execution(cloud: Cloud, **machine: Any) -> tuple[HeldStep, str]:
    step = HeldStep(cloud)
    arn = cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task(step.arn)}, **machine})
    execution = cloud.start(arn)
    assert step.gate.arrived.wait(10), "the step was never invoked"
    return step, execution


def test_moto_as_pinned_ends_a_stopped_execution_only_when_its_lambda_call_returns(
    cloud: Cloud, recorded: list[dict[str, Any]]
) -> None:
    step, execution = _held_execution(cloud)

    cloud.sfn.stop_execution(executionArn=execution)

    assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert recorded == []
    step.gate.open()
    assert cloud.wait(execution)["status"] == "ABORTED"


def test_a_stopped_execution_ends_at_once_and_its_lambda_call_runs_on(
    cloud: Cloud, recorded: list[dict[str, Any]]
) -> None:
    with immediate_stops():
        step, execution = _held_execution(cloud)

        answer = cloud.sfn.stop_execution(executionArn=execution)

        description = cloud.sfn.describe_execution(executionArn=execution)
        assert description["status"] == "ABORTED"
        assert description["stopDate"] == answer["stopDate"]
        assert [(event["detail"]["executionArn"], event["detail"]["status"]) for event in recorded] == [
            (execution, "ABORTED")
        ]
        assert recorded[0]["detail"]["stopDate"] is not None
        assert not step.finished.is_set()  # still held: the stop did not wait for it
        assert cloud.history(execution)[-1]["type"] == "ExecutionAborted"

        step.gate.open()
        assert step.finished.wait(10)
        # The call's return is ignored: still ABORTED, no second status change, no output, no event.
        description = cloud.sfn.describe_execution(executionArn=execution)
        assert (description["status"], description.get("output")) == ("ABORTED", None)
        assert len(recorded) == 1
        assert cloud.history(execution)[-1]["type"] == "ExecutionAborted"


def test_an_execution_timeout_ends_it_at_once_and_its_lambda_call_runs_on(
    cloud: Cloud, recorded: list[dict[str, Any]]
) -> None:
    with immediate_stops(), scaled_waits(0.01, execution_timeout_scale=0.01):
        step, execution = _held_execution(cloud, TimeoutSeconds=10)

        assert cloud.wait(execution)["status"] == "TIMED_OUT"
        assert [event["detail"]["status"] for event in recorded] == ["TIMED_OUT"]
        assert not step.finished.is_set()
        assert cloud.history(execution)[-1]["type"] == "ExecutionTimedOut"

        step.gate.open()
        assert step.finished.wait(10)
        assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "TIMED_OUT"
        assert len(recorded) == 1
        assert cloud.history(execution)[-1]["type"] == "ExecutionTimedOut"


def test_a_stop_before_the_worker_has_started_aborts_the_execution(
    cloud: Cloud, recorded: list[dict[str, Any]]
) -> None:
    machine = cloud.machine({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    with immediate_stops(), _workers_held() as release:
        execution = cloud.start(machine)
        cloud.sfn.stop_execution(executionArn=execution)  # moto as pinned: 500, no environment yet
        assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
        release.set()
        cloud.wait_for_history(execution, "ExecutionAborted")
        # The event is published by the stopping thread, which may write the history first.
        deadline = time.monotonic() + 30
        while not recorded and time.monotonic() < deadline:
            time.sleep(0.01)

    assert [event["detail"]["status"] for event in recorded] == ["ABORTED"]
    assert not any(event["type"] == "PassStateEntered" for event in cloud.history(execution))


@contextlib.contextmanager
def _workers_held() -> Iterator[threading.Event]:
    """Hold every new execution's worker before it builds its environment, until the event is set."""
    release = threading.Event()
    original = ExecutionWorker._get_evaluation_environment

    def held(self: ExecutionWorker) -> Any:
        assert release.wait(10), "the test never released the worker"
        return original(self)

    with mock_patch.object(ExecutionWorker, "_get_evaluation_environment", held):
        try:
            yield release
        finally:
            release.set()


def test_moto_as_pinned_fails_a_stop_before_the_worker_has_started(cloud: Cloud) -> None:
    machine = cloud.machine({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    with _workers_held() as release:
        execution = cloud.start(machine)
        with pytest.raises((ClientError, AttributeError)):
            cloud.sfn.stop_execution(executionArn=execution)
        release.set()
    cloud.wait(execution)


@contextlib.contextmanager
def _task_ended_just_before_its_timeout_is_read() -> Iterator[None]:
    """End each task's frame right after its parameters are evaluated, as the task's own timeout ends it."""
    original = StateTask._eval_parameters

    def parameters_then_end(self: StateTask, env: Any) -> Any:
        parameters = original(self, env)
        assert env.is_frame()  # the task runs in a frame of its own, which its timeout ends
        env.set_ended()
        return parameters

    with mock_patch.object(StateTask, "_eval_parameters", parameters_then_end):
        yield


def _timed_task_ended_mid_scheduling(cloud: Cloud) -> str:
    function = cloud.function(lambda event, context: {})
    machine = cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task(function, TimeoutSeconds=30)}})
    with _task_ended_just_before_its_timeout_is_read():
        execution = cloud.start(machine)
        cloud.wait_for_history(execution, "TaskScheduled")
    return execution


def test_moto_as_pinned_records_a_dict_as_the_timeout_of_a_task_ended_mid_scheduling(cloud: Cloud) -> None:
    function = cloud.function(lambda event, context: {})
    machine = cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task(function, TimeoutSeconds=30)}})
    with _task_ended_just_before_its_timeout_is_read():
        execution = cloud.start(machine)

        deadline = time.monotonic() + 10
        with pytest.raises(TypeError, match="not 'dict'"):  # the history cannot be serialized any more
            while time.monotonic() < deadline:
                cloud.history(execution)
                time.sleep(0.01)


def test_a_task_ended_mid_scheduling_keeps_a_readable_history(cloud: Cloud) -> None:
    with timeouts_evaluated_once_stopped():
        execution = _timed_task_ended_mid_scheduling(cloud)

        (scheduled,) = [event for event in cloud.history(execution) if event["type"] == "TaskScheduled"]
        assert scheduled["taskScheduledEventDetails"]["timeoutInSeconds"] == 30


# --------------------------------------------------------------------------- the outcome before the status
class WatchedExecution:
    """moto's execution as the worker's link sees it, noting the output whenever its status is set."""

    def __init__(self, env: Any) -> None:
        self.exec_worker = type("Worker", (), {"env": env})()
        self.output: Any = None
        self.error: Any = None
        self.cause: Any = None
        self.stop_date: Any = None
        self.seen_with_status: list[tuple[Any, Any]] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "exec_status":
            self.seen_with_status.append((value.value, self.output))
        object.__setattr__(self, name, value)


class EndedProgram:
    """An environment whose program ended with ``output``."""

    def __init__(self, output: Any) -> None:
        self.states = type("States", (), {"get_input": staticmethod(lambda: output)})()

    def program_state(self) -> Any:
        return ProgramEnded()


def test_moto_as_pinned_says_succeeded_before_the_output_is_there() -> None:
    execution = WatchedExecution(EndedProgram({"a": 1}))

    BaseExecutionWorkerCommunication(execution)._reflect_execution_status()  # type: ignore[arg-type]

    assert execution.seen_with_status == [("SUCCEEDED", None)]
    assert execution.output == {"a": 1}


def test_an_execution_says_succeeded_only_once_its_output_is_there() -> None:
    execution = WatchedExecution(EndedProgram({"a": 1}))

    with outcome_before_status():
        BaseExecutionWorkerCommunication(execution)._reflect_execution_status()  # type: ignore[arg-type]

    assert execution.seen_with_status == [("SUCCEEDED", {"a": 1})]
    assert execution.stop_date is not None
