"""``express_executions_unanswered``: an Express execution has an ``express`` ARN that no execution API answers for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.adapters import (
    EXPRESS_INVALID_ARN,
    Gate,
    express_executions_unanswered,
    express_outcome,
    immediate_stops,
    is_express_arn,
    nested_workflows,
    sync_children_stop_with_their_task,
)
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task  # noqa: F401  (the cloud fixture)

START_SYNC = "arn:aws:states:::states:startExecution.sync:2"


class HeldExpress:
    """An Express state machine whose only step is held on a gate and counts its calls."""

    def __init__(self, cloud: Cloud) -> None:
        self.gate = Gate()
        self.calls = 0
        self.finished = threading.Event()
        cloud.function(self._step, name="express-step")
        self._held = cloud.registry.intercept("express-step", self.gate)
        self._held.__enter__()
        self.machine = cloud.machine(
            {"StartAt": "Step", "States": {"Step": lambda_task("express-step")}}, machine_type="EXPRESS"
        )

    def _step(self, event: Any, context: Any) -> Any:
        self.calls += 1
        self.finished.set()
        return {"done": self.calls}


@pytest.fixture
def express(cloud: Cloud) -> Iterator[HeldExpress]:
    with express_executions_unanswered():
        yield HeldExpress(cloud)


def _refusal(call: Any, **parameters: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**parameters)
    return {name: str(value) for name, value in refused.value.response["Error"].items()}


def test_moto_as_pinned_names_describes_and_stops_an_express_execution_as_a_standard_one(cloud: Cloud) -> None:
    held = HeldExpress(cloud)
    execution = cloud.start(held.machine)
    assert held.gate.arrived.wait(10)

    assert ":execution:" in execution
    assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    cloud.sfn.stop_execution(executionArn=execution)
    held.gate.open()
    assert cloud.wait(execution)["status"] == "ABORTED"


def test_an_express_execution_has_an_express_arn_that_describe_stop_and_history_refuse(
    cloud: Cloud, express: HeldExpress
) -> None:
    execution = cloud.start(express.machine)
    assert express.gate.arrived.wait(10)

    refusals = [
        _refusal(cloud.sfn.describe_execution, executionArn=execution),
        _refusal(cloud.sfn.stop_execution, executionArn=execution),
        _refusal(cloud.sfn.get_execution_history, executionArn=execution),
    ]
    express.gate.open()

    assert is_express_arn(execution)
    assert execution.split(":")[5:8] == ["express", express.machine.rsplit(":", 1)[-1], execution.split(":")[7]]
    assert refusals == [{"Code": "InvalidArn", "Message": EXPRESS_INVALID_ARN}] * 3
    # Not stopped: it runs to its end, which only its logs (here moto's record) tell.
    assert express.finished.wait(10)
    assert cloud.wait_in_logs(execution) == "SUCCEEDED"
    assert express_outcome(execution)["output"] == '{"done":1}'


def test_a_standard_arn_made_up_for_an_express_execution_does_not_exist(cloud: Cloud, express: HeldExpress) -> None:
    execution = cloud.start(express.machine)
    express.gate.open()
    made_up = execution.replace(":express:", ":execution:").rsplit(":", 1)[0]

    refusal = _refusal(cloud.sfn.describe_execution, executionArn=made_up)

    assert refusal["Code"] == "ExecutionDoesNotExist"
    assert cloud.wait_in_logs(execution) == "SUCCEEDED"


def test_standard_executions_are_still_described_and_stopped(cloud: Cloud, express: HeldExpress) -> None:
    gate = Gate()
    cloud.function(lambda event, context: {}, name="standard-step")
    with cloud.registry.intercept("standard-step", gate):
        execution = cloud.start(cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task("standard-step")}}))
        assert gate.arrived.wait(10)
        assert cloud.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        cloud.sfn.stop_execution(executionArn=execution)
        gate.open()
    assert cloud.wait(execution)["status"] == "ABORTED"


def test_a_standard_parent_still_follows_its_express_child_to_its_end(cloud: Cloud, express: HeldExpress) -> None:
    run_child = {
        "Type": "Task",
        "Resource": START_SYNC,
        "Parameters": {"StateMachineArn": express.machine, "Input": {}},
        "End": True,
    }
    with nested_workflows():
        parent = cloud.start(cloud.machine({"StartAt": "Run the child", "States": {"Run the child": run_child}}))
        assert express.gate.arrived.wait(10)
        express.gate.open()
        described = cloud.wait(parent)

    assert described["status"] == "SUCCEEDED"
    assert '"Output":{"done":1}' in described["output"].replace(" ", "")


def test_stopping_the_parent_does_not_stop_its_express_child(cloud: Cloud, express: HeldExpress) -> None:
    run_child = {
        "Type": "Task",
        "Resource": START_SYNC,
        "Parameters": {"StateMachineArn": express.machine, "Input": {}},
        "End": True,
    }
    with nested_workflows(), sync_children_stop_with_their_task(), immediate_stops():
        parent = cloud.start(cloud.machine({"StartAt": "Run the child", "States": {"Run the child": run_child}}))
        assert express.gate.arrived.wait(10)
        (child,) = cloud.sfn.list_executions(stateMachineArn=express.machine)["executions"]
        cloud.sfn.stop_execution(executionArn=parent)
        assert cloud.wait(parent)["status"] == "ABORTED"
        express.gate.open()
        child_status = cloud.wait_in_logs(child["executionArn"])

    assert child_status == "SUCCEEDED"
    assert express.calls == 1
