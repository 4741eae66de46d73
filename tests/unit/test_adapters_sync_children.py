"""``sync_children_stop_with_their_task``: a ``.sync`` child is stopped when its parent's task ends first."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.adapters import (
    Gate,
    immediate_stops,
    nested_workflows,
    scaled_waits,
    stoppable_task_token_waits,
    sync_children_stop_with_their_task,
)
from emulator.events import STATUS_CHANGE, EventBus, execution_status_events
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task  # noqa: F401  (the cloud fixture)

START_SYNC = "arn:aws:states:::states:startExecution.sync:2"


class Family:
    """A parent that runs a child with ``.sync:2``; the child's only step is held on a gate."""

    def __init__(self, cloud: Cloud, task: dict[str, Any] | None = None, **parent: Any) -> None:
        self.cloud = cloud
        self.gate = Gate()
        self.step_calls = 0
        self.step_finished = threading.Event()
        cloud.function(self._step, name="child-step")
        self._held = cloud.registry.intercept("child-step", self.gate)
        self._held.__enter__()
        self.child = cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task("child-step")}})
        run_child = {
            "Type": "Task",
            "Resource": START_SYNC,
            "Parameters": {"StateMachineArn": self.child, "Input": {}},
            "End": True,
        }
        self.parent = cloud.machine(
            {"StartAt": "Run the child", "States": {"Run the child": {**run_child, **(task or {})}}, **parent}
        )

    def _step(self, event: Any, context: Any) -> Any:
        self.step_calls += 1  # stands for the step's own writes
        self.step_finished.set()
        return {}

    def start(self) -> tuple[str, str]:
        """Start the parent; return its ARN and its child's once the child's step is held."""
        parent = self.cloud.start(self.parent)
        assert self.gate.arrived.wait(10), "the child's step was never invoked"
        (child,) = self.cloud.sfn.list_executions(stateMachineArn=self.child)["executions"]
        return parent, child["executionArn"]


@pytest.fixture
def published(cloud: Cloud) -> Iterator[list[dict[str, Any]]]:
    """The detail of every status-change event, in the order published."""
    bus = EventBus(region="us-east-1", account_id="123456789012")
    details: list[dict[str, Any]] = []
    original = bus.put_event

    def put_event(source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> dict[str, Any]:
        if detail_type == STATUS_CHANGE:
            details.append(detail)
        return original(source, detail_type, detail, resources)

    bus.put_event = put_event  # type: ignore[method-assign]  # this bus only: the test's view of what it publishes
    with execution_status_events(bus):
        yield details


@contextlib.contextmanager
def _as_shipped_by_the_project() -> Iterator[None]:
    with nested_workflows(), stoppable_task_token_waits(), scaled_waits(0.01, execution_timeout_scale=0.5):
        yield


def test_moto_as_pinned_leaves_the_child_of_a_stopped_parent_running(cloud: Cloud) -> None:
    with _as_shipped_by_the_project(), immediate_stops():
        family = Family(cloud)
        parent, child = family.start()

        cloud.sfn.stop_execution(executionArn=parent)

        assert cloud.wait(parent)["status"] == "ABORTED"
        family.gate.open()
        assert cloud.wait(child)["status"] == "SUCCEEDED"


def test_the_child_of_a_stopped_parent_is_stopped_while_its_step_runs_on(
    cloud: Cloud, published: list[dict[str, Any]]
) -> None:
    with _as_shipped_by_the_project(), immediate_stops(), sync_children_stop_with_their_task():
        family = Family(cloud)
        parent, child = family.start()

        cloud.sfn.stop_execution(executionArn=parent)

        assert cloud.wait(child)["status"] == "ABORTED"
        assert family.step_calls == 0  # the child's step is still held
        assert [(detail["executionArn"], detail["status"]) for detail in published] == [
            (parent, "ABORTED"),
            (child, "ABORTED"),
        ]
        family.gate.open()
        assert family.step_finished.wait(10)  # it ran to its end on its own
        assert family.step_calls == 1
        assert cloud.sfn.describe_execution(executionArn=child)["status"] == "ABORTED"


@pytest.mark.parametrize(
    ("task", "parent", "parent_status"),
    [
        # Both last 5 s at the scales below: time enough for the child's step to be reached first.
        ({"TimeoutSeconds": 500}, {}, "FAILED"),
        ({}, {"TimeoutSeconds": 10}, "TIMED_OUT"),
    ],
    ids=["task-timeout", "execution-timeout"],
)
def test_the_child_is_stopped_when_its_task_or_its_parent_times_out(
    cloud: Cloud, task: dict[str, Any], parent: dict[str, Any], parent_status: str
) -> None:
    with _as_shipped_by_the_project(), immediate_stops(), sync_children_stop_with_their_task():
        family = Family(cloud, task, **parent)
        parent_arn, child = family.start()

        description = cloud.wait(parent_arn)
        assert description["status"] == parent_status
        assert cloud.wait(child)["status"] == "ABORTED"
        assert family.step_calls == 0  # still held
        family.gate.open()
        assert family.step_finished.wait(10)


def test_a_child_that_ends_first_is_left_as_it_ended(cloud: Cloud) -> None:
    with _as_shipped_by_the_project(), immediate_stops(), sync_children_stop_with_their_task():
        family = Family(cloud)
        family.gate.open()
        parent, child = family.start()

        assert cloud.wait(parent)["status"] == "SUCCEEDED"
        assert cloud.wait(child)["status"] == "SUCCEEDED"
