"""``redrivable_executions``: RedriveExecution as Step Functions documents it, point by point."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from emulator.adapters import REDRIVE_PERIOD, Gate, immediate_stops, redrivable_executions, scaled_waits
from emulator.events import EventBus, execution_status_events, publish_status_change
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task, status_changes_of  # noqa: F401  (the cloud fixture)


class Steps:
    """Lambda steps that count their calls; a step in ``failing`` raises until it is taken out."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.calls: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.inputs: dict[str, list[Any]] = {}

    def step(self, name: str) -> str:
        def handler(event: Any, context: Any) -> Any:
            self.calls[name] += 1
            self.inputs.setdefault(name, []).append(event)
            if name in self.failing:
                raise ValueError(f"{name} fails")
            return {name: self.calls[name]}

        return self.cloud.function(handler, name=f"{name}-{id(self) % 10_000}")


class Clock:
    """The adapter's clock, moved on by the test."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(tz=datetime.UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def published(cloud: Cloud, clock: Clock) -> Iterator[list[dict[str, Any]]]:
    """The adapter on (with immediate stops and status-change events); yields every status change published."""
    bus = EventBus(region="us-east-1", account_id="123456789012")
    events = status_changes_of(bus)
    with (
        execution_status_events(bus),
        immediate_stops(),
        redrivable_executions(clock, on_redrive=lambda execution: publish_status_change(bus, execution)),
    ):
        yield events


def _wait_for_exits(cloud: Cloud, execution: str, state: str, count: int) -> None:
    """Wait until ``state`` has exited ``count`` times in the execution's history (from inside a step)."""
    deadline = time.monotonic() + 20
    while (
        sum(event.get("stateExitedEventDetails", {}).get("name") == state for event in cloud.history(execution)) < count
    ):
        assert time.monotonic() < deadline, f"{state} did not exit {count} times"
        time.sleep(0.01)


def _chain(steps: Steps, *names: str) -> dict[str, Any]:
    """A machine running the named steps one after the other, each one's call count under its name."""
    states: dict[str, Any] = {}
    for index, name in enumerate(names):
        last = index == len(names) - 1
        states[name] = lambda_task(
            steps.step(name),
            ResultSelector={"count.$": f"$.Payload.{name}"},
            ResultPath=f"$.{name}",
            OutputPath=None,
            End=True if last else None,
            Next=None if last else names[index + 1],
        )
    return {"StartAt": names[0], "States": states}


def test_moto_as_pinned_has_no_redrive(cloud: Cloud) -> None:
    steps = Steps(cloud)
    steps.failing.add("a")
    execution = cloud.start(cloud.machine(_chain(steps, "a")))
    assert cloud.wait(execution)["status"] == "FAILED"

    with pytest.raises(NotImplementedError):
        cloud.sfn.redrive_execution(executionArn=execution)
    assert "redriveStatus" not in cloud.sfn.describe_execution(executionArn=execution)


@pytest.mark.usefixtures("published")
def test_a_redrive_continues_the_same_execution_from_its_failed_state_with_the_input_it_had(cloud: Cloud) -> None:
    steps = Steps(cloud)
    steps.failing.add("b")
    execution = cloud.start(cloud.machine(_chain(steps, "a", "b", "c")), {"order": 7})
    assert cloud.wait(execution)["status"] == "FAILED"
    steps.failing.clear()

    response = cloud.sfn.redrive_execution(executionArn=execution)
    described = cloud.wait(execution)

    assert described["status"] == "SUCCEEDED"
    assert described["executionArn"] == execution
    assert described["redriveDate"] == response["redriveDate"]
    assert steps.calls == {"a": 1, "b": 2, "c": 1}  # a succeeded before: not rerun
    # b got the same input both times: the execution's input with a's kept result.
    assert steps.inputs["b"][0] == steps.inputs["b"][1] == {"order": 7, "a": {"count": 1}}
    assert json.loads(described["output"]) == {"order": 7, "a": {"count": 1}, "b": {"count": 2}, "c": {"count": 1}}


@pytest.mark.usefixtures("published")
def test_the_history_goes_on_after_a_redriven_event_and_enters_only_the_states_that_run_again(cloud: Cloud) -> None:
    steps = Steps(cloud)
    steps.failing.add("b")
    execution = cloud.start(cloud.machine(_chain(steps, "a", "b")))
    cloud.wait(execution)
    first = cloud.history(execution)
    steps.failing.clear()

    cloud.sfn.redrive_execution(executionArn=execution)
    cloud.wait(execution)
    history = cloud.history(execution)

    assert history[: len(first)] == first
    redriven = history[len(first)]
    assert redriven["type"] == "ExecutionRedriven"
    assert redriven["executionRedrivenEventDetails"]["redriveCount"] == 1
    entered = [
        event["stateEnteredEventDetails"]["name"]
        for event in history[len(first) :]
        if event["type"].endswith("StateEntered")
    ]
    assert entered == ["b"]
    assert [event["id"] for event in history] == list(range(1, len(history) + 1))


@pytest.mark.usefixtures("published")
def test_a_parallel_reruns_only_its_failed_branch_and_keeps_the_results_of_the_others(cloud: Cloud) -> None:
    steps = Steps(cloud)
    failing = [True]

    def fails_once_left_exited(event: Any, context: Any) -> Any:
        steps.calls["right"] += 1
        _wait_for_exits(cloud, event["execution"], "left", 1)  # else the left branch is aborted, and reruns too
        if failing[0]:
            raise ValueError("right fails")
        return {"right": steps.calls["right"]}

    right = cloud.function(fails_once_left_exited)
    branches = [
        {"StartAt": "left", "States": {"left": lambda_task(steps.step("left"))}},
        {
            "StartAt": "right",
            "States": {
                "right": lambda_task(
                    right, Parameters={"FunctionName": right, "Payload": {"execution.$": "$$.Execution.Id"}}
                )
            },
        },
    ]
    machine = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "Branches": branches, "End": True}}}
    execution = cloud.start(cloud.machine(machine))
    assert cloud.wait(execution)["status"] == "FAILED"
    failing[0] = False

    cloud.sfn.redrive_execution(executionArn=execution)
    described = cloud.wait(execution)

    assert steps.calls == {"left": 1, "right": 2}
    assert json.loads(described["output"]) == [{"left": 1}, {"right": 2}]


@pytest.mark.usefixtures("published")
def test_a_parallel_branch_aborted_by_a_sibling_continues_from_the_state_it_was_in(cloud: Cloud) -> None:
    steps = Steps(cloud)
    gate = Gate()
    failing = [True]

    def fails_once_held_is_running(event: Any, context: Any) -> Any:
        steps.calls["fails"] += 1
        assert gate.arrived.wait(10)  # the sibling's call is under way
        if failing[0]:
            raise ValueError("fails")
        return "ok"

    held = steps.step("held")
    long_branch = {
        "StartAt": "first",
        "States": {"first": lambda_task(steps.step("first"), End=None, Next="held"), "held": lambda_task(held)},
    }
    short_branch = {"StartAt": "fails", "States": {"fails": lambda_task(cloud.function(fails_once_held_is_running))}}
    machine = {
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "Branches": [long_branch, short_branch], "End": True}},
    }
    with cloud.registry.intercept(held.rsplit(":", 1)[-1], gate):
        execution = cloud.start(cloud.machine(machine))
        assert cloud.wait(execution)["status"] == "FAILED"
        gate.open()
    failing[0] = False

    cloud.sfn.redrive_execution(executionArn=execution)
    described = cloud.wait(execution)

    assert described["status"] == "SUCCEEDED"
    # "first" exited before the sibling failed: kept. "held" was aborted (its call ran on, unheard): run again.
    assert (steps.calls["first"], steps.calls["held"], steps.calls["fails"]) == (1, 2, 2)
    assert json.loads(described["output"]) == [{"held": 2}, "ok"]


@pytest.mark.usefixtures("published")
def test_an_inline_map_reruns_only_its_failed_iterations(cloud: Cloud) -> None:
    steps = Steps(cloud)
    failing_items: set[int] = {2}

    def item_step(event: Any, context: Any) -> Any:
        steps.calls[f"item {event['n']}"] += 1
        if event["n"] in failing_items:
            _wait_for_exits(cloud, event["execution"], "Item", 2)  # else the others are aborted, and rerun too
            raise ValueError("this item fails")
        return event["n"] * 10

    step = cloud.function(item_step)
    parameters = {"FunctionName": step, "Payload.$": "$"}
    machine = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"n.$": "$$.Map.Item.Value.n", "execution.$": "$$.Execution.Id"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": lambda_task(step, Parameters=parameters)},
                },
                "End": True,
            }
        },
    }
    execution = cloud.start(cloud.machine(machine), {"items": [{"n": 1}, {"n": 2}, {"n": 3}]})
    assert cloud.wait(execution)["status"] == "FAILED"
    first_calls = Counter(steps.calls)
    failing_items.clear()

    cloud.sfn.redrive_execution(executionArn=execution)
    described = cloud.wait(execution)

    assert json.loads(described["output"]) == [10, 20, 30]
    assert first_calls == {"item 1": 1, "item 2": 1, "item 3": 1}
    assert steps.calls == {"item 1": 1, "item 2": 2, "item 3": 1}


@pytest.mark.usefixtures("published")
def test_the_context_object_gives_the_redrive_count_and_after_a_redrive_its_time(cloud: Cloud) -> None:
    seen: list[dict[str, Any]] = []
    failing = [True]

    def look(event: Any, context: Any) -> Any:
        seen.append(event)
        if failing[0]:
            raise ValueError("not yet")
        return event

    step = cloud.function(look)
    parameters = {"FunctionName": step, "Payload": {"execution.$": "$$.Execution"}}
    execution = cloud.start(
        cloud.machine({"StartAt": "Look", "States": {"Look": lambda_task(step, Parameters=parameters)}})
    )
    cloud.wait(execution)
    failing[0] = False

    redrive_date = cloud.sfn.redrive_execution(executionArn=execution)["redriveDate"]
    cloud.wait(execution)

    before, after = (call["execution"] for call in seen)
    assert before["RedriveCount"] == 0
    assert "RedriveTime" not in before
    assert after["RedriveCount"] == 1
    redrive_time = datetime.datetime.fromisoformat(after["RedriveTime"].replace("Z", "+00:00"))
    assert abs(redrive_time - redrive_date) < datetime.timedelta(milliseconds=1)
    assert after["Id"] == before["Id"] == execution
    assert after["StartTime"] == before["StartTime"]


@pytest.mark.usefixtures("published")
def test_describe_execution_gives_the_redrive_count_date_and_status(cloud: Cloud) -> None:
    steps = Steps(cloud)
    steps.failing.add("a")
    execution = cloud.start(cloud.machine(_chain(steps, "a")))
    failed = cloud.wait(execution)
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    assert "redriveDate" not in failed

    cloud.sfn.redrive_execution(executionArn=execution)
    cloud.wait(execution)
    cloud.sfn.redrive_execution(executionArn=execution)
    again = cloud.wait(execution)

    assert again["status"] == "FAILED"
    assert again["redriveCount"] == 2
    assert again["redriveDate"] >= again["startDate"]
    assert steps.calls["a"] == 3


def test_a_redrive_goes_through_pending_redrive_to_running_and_publishes_the_change(
    cloud: Cloud, published: list[dict[str, Any]]
) -> None:
    steps = Steps(cloud)
    steps.failing.add("a")
    execution = cloud.start(cloud.machine(_chain(steps, "a")))
    cloud.wait(execution)
    steps.failing.clear()
    scheduled = threading.Event()
    release = threading.Event()
    original = ExecutionWorker._get_evaluation_environment

    def held_environment(self: ExecutionWorker) -> Any:
        scheduled.set()
        assert release.wait(10)
        return original(self)

    with mock.patch.object(ExecutionWorker, "_get_evaluation_environment", held_environment):
        cloud.sfn.redrive_execution(executionArn=execution)
        assert scheduled.wait(10)
        pending = cloud.sfn.describe_execution(executionArn=execution)
        release.set()
        assert cloud.wait(execution)["status"] == "SUCCEEDED"

    assert pending["status"] == "PENDING_REDRIVE"
    assert "stopDate" not in pending
    changes = [(event["detail"]["status"], event["detail"]["redriveCount"]) for event in published]
    assert changes == [("FAILED", 0), ("RUNNING", 1), ("SUCCEEDED", 1)]
    assert published[1]["detail"]["redriveDate"] is not None


@pytest.mark.usefixtures("published")
def test_a_stopped_execution_is_redriven_from_the_state_it_was_stopped_in(cloud: Cloud) -> None:
    steps = Steps(cloud)
    gate = Gate()
    machine = _chain(steps, "a", "b", "c")
    with cloud.registry.intercept(f"b-{id(steps) % 10_000}", gate):
        execution = cloud.start(cloud.machine(machine))
        assert gate.arrived.wait(10)
        cloud.sfn.stop_execution(executionArn=execution)
        assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
        gate.open()

    cloud.sfn.redrive_execution(executionArn=execution)

    assert cloud.wait(execution)["status"] == "SUCCEEDED"
    assert steps.calls == {"a": 1, "b": 2, "c": 1}


def test_a_timed_out_execution_can_be_redriven_and_its_timeout_counts_again(cloud: Cloud) -> None:
    steps = Steps(cloud)
    machine = {**_chain(steps, "a"), "TimeoutSeconds": 2}
    machine["States"]["a"] = {"Type": "Wait", "Seconds": 5, "Next": "b"}
    machine["States"]["b"] = lambda_task(steps.step("b"))
    machine["StartAt"] = "a"
    with redrivable_executions(), scaled_waits(1.0):
        execution = cloud.start(cloud.machine(machine))
        assert cloud.wait(execution)["status"] == "TIMED_OUT"
        cloud.sfn.redrive_execution(executionArn=execution)
        # The Wait did not exit: it runs again, and the timeout ends the execution again.
        assert cloud.wait(execution)["status"] == "TIMED_OUT"
    assert steps.calls["b"] == 0


@pytest.mark.usefixtures("published")
def test_running_and_succeeded_executions_cannot_be_redriven(cloud: Cloud) -> None:
    steps = Steps(cloud)
    gate = Gate()
    machine = cloud.machine(_chain(steps, "a"))
    with cloud.registry.intercept(f"a-{id(steps) % 10_000}", gate):
        execution = cloud.start(machine)
        assert gate.arrived.wait(10)
        with pytest.raises(ClientError) as running:
            cloud.sfn.redrive_execution(executionArn=execution)
        gate.open()
    assert cloud.wait(execution)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as succeeded:
        cloud.sfn.redrive_execution(executionArn=execution)

    assert running.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert succeeded.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    described = cloud.sfn.describe_execution(executionArn=execution)
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is SUCCEEDED and cannot be redriven",
    )
    assert steps.calls["a"] == 1


@pytest.mark.usefixtures("published")
def test_an_express_execution_cannot_be_redriven(cloud: Cloud) -> None:
    steps = Steps(cloud)
    steps.failing.add("a")
    execution = cloud.start(cloud.machine(_chain(steps, "a"), machine_type="EXPRESS"))
    cloud.wait_in_logs(execution)

    with pytest.raises(ClientError) as refused:
        cloud.sfn.redrive_execution(executionArn=execution)

    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert steps.calls["a"] == 1


@pytest.mark.usefixtures("published")
def test_an_execution_cannot_be_redriven_past_the_redrive_period(cloud: Cloud, clock: Clock) -> None:
    steps = Steps(cloud)
    steps.failing.add("a")
    execution = cloud.start(cloud.machine(_chain(steps, "a")))
    cloud.wait(execution)

    clock.offset = REDRIVE_PERIOD - datetime.timedelta(minutes=1)
    assert cloud.sfn.describe_execution(executionArn=execution)["redriveStatus"] == "REDRIVABLE"
    clock.offset = REDRIVE_PERIOD + datetime.timedelta(minutes=1)
    described = cloud.sfn.describe_execution(executionArn=execution)
    with pytest.raises(ClientError) as refused:
        cloud.sfn.redrive_execution(executionArn=execution)

    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert steps.calls["a"] == 1
