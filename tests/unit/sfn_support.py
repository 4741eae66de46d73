"""Plain moto with executions on and Lambda functions in process: the ground the Step Functions adapters are tested on.

Each test enters the adapters it is about (or leaves them out, to show what moto as pinned does).
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import boto3
import pytest
from moto import mock_aws

from emulator.adapters import Handler, LambdaRegistry, in_process_lambdas
from emulator.events import STATUS_CHANGE, EventBus

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.type_defs import HistoryEventTypeDef

REGION = "us-east-1"
FINISHED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class Cloud:
    """State machines and in-process Lambda functions in moto, and executions run to their end."""

    def __init__(self, registry: LambdaRegistry) -> None:
        self.registry = registry
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self._lambda = boto3.client("lambda", region_name=REGION)
        self._role = boto3.client("iam", region_name=REGION).create_role(
            RoleName=f"role-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]

    def function(self, handler: Handler, name: str | None = None) -> str:
        """A Lambda function that runs ``handler`` in this process; returns its ARN."""
        name = name or f"fn-{uuid.uuid4().hex[:8]}"
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as files:
            files.writestr("README.txt", "runs in process")
        arn: str = self._lambda.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=self._role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
        )["FunctionArn"]
        self.registry.register(name, name, handler)
        return arn

    def machine(self, definition: dict[str, Any], machine_type: Literal["STANDARD", "EXPRESS"] = "STANDARD") -> str:
        arn: str = self.sfn.create_state_machine(
            name=f"machine-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(definition),
            roleArn=self._role,
            type=machine_type,
        )["stateMachineArn"]
        return arn

    def start(self, machine: str, execution_input: Any = None, *, input_json: str | None = None) -> str:
        # Non-ASCII text as itself, as an SDK sends it: escaped, it would count up to six times its size.
        text = (
            input_json
            if input_json is not None
            else json.dumps({} if execution_input is None else execution_input, ensure_ascii=False)
        )
        arn: str = self.sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input=text)["executionArn"]
        return arn

    def wait(self, execution: str, seconds: float = 20) -> dict[str, Any]:
        """The execution's description once it has finished (a generous bound: a stuck execution fails the test)."""
        deadline = time.monotonic() + seconds
        while (description := self.sfn.describe_execution(executionArn=execution))["status"] not in FINISHED:
            assert time.monotonic() < deadline, f"{execution} did not finish"
            time.sleep(0.01)
        return dict(description)

    def wait_in_logs(self, execution: str, seconds: float = 20) -> str:
        """The status an execution ended with, read where an Express execution's is (its logs: here moto's record)."""
        deadline = time.monotonic() + seconds
        while (status := moto_execution(execution).status) not in FINISHED:
            assert time.monotonic() < deadline, f"{execution} did not finish"
            time.sleep(0.01)
        return str(status)

    def run(self, machine: str, execution_input: Any = None, *, input_json: str | None = None) -> dict[str, Any]:
        return self.wait(self.start(machine, execution_input, input_json=input_json))

    def wait_for_history(self, execution: str, event_type: str, seconds: float = 20) -> None:
        """Wait until the execution's history has an event of ``event_type`` (its worker has ended)."""
        deadline = time.monotonic() + seconds
        while not any(event["type"] == event_type for event in self.history(execution)):
            assert time.monotonic() < deadline, f"no {event_type} in the history of {execution}"
            time.sleep(0.01)

    def history(self, execution: str) -> list[HistoryEventTypeDef]:
        return list(self.sfn.get_execution_history(executionArn=execution)["events"])


def status_changes_of(bus: EventBus) -> list[dict[str, Any]]:
    """Every "Step Functions Execution Status Change" event ``bus`` publishes from now on, in order (filled as
    published)."""
    events: list[dict[str, Any]] = []
    original = bus.put_event

    def put_event(source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> dict[str, Any]:
        event = original(source, detail_type, detail, resources)
        if detail_type == STATUS_CHANGE:
            events.append(event)
        return event

    bus.put_event = put_event  # type: ignore[method-assign]  # this bus only: the test's view of what it publishes
    return events


def moto_execution(execution_arn: str) -> Any:
    """moto's own record of an execution, Standard or Express."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends["123456789012"][REGION].describe_execution(execution_arn)


@pytest.fixture(name="cloud")
def cloud_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    interpreter_log = logging.getLogger("moto.stepfunctions.parser")
    level = interpreter_log.level
    interpreter_log.setLevel(logging.CRITICAL)  # failed states log their whole parse tree
    registry = LambdaRegistry()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), in_process_lambdas(registry):
            yield Cloud(registry)
    finally:
        interpreter_log.setLevel(level)


def lambda_task(function_arn: str, **fields: Any) -> dict[str, Any]:
    """A Task state that invokes ``function_arn`` with the state's input and ends the execution.

    ``fields`` are added to the state; one given as None is left out (``End=None, Next=...``).
    """
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
        **fields,
    }
    return {name: value for name, value in state.items() if value is not None}
