"""The task-token adapters of emulator.adapters, against moto's Step Functions backend.

``task_tokens_reach_started_executions`` (a token sent while another execution is starting) and
``stoppable_task_token_waits`` (a ``.waitForTaskToken`` wait ends with its execution).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.models import Execution
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from emulator.adapters import nested_workflows, stoppable_task_token_waits, task_tokens_reach_started_executions

ROLE = "arn:aws:iam::123456789012:role/r"


@pytest.fixture
def sfn_with_a_starting_execution(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        sfn.create_state_machine(
            name="m", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
        )
        machine = stepfunctions_parser_backends["123456789012"]["us-east-1"].state_machines[0]
        # RUNNING, but its worker has not built its evaluation environment yet: a stand-in with only
        # the attributes moto reads of such an execution.
        starting = SimpleNamespace(status="RUNNING", exec_worker=SimpleNamespace(env=None))
        machine.executions.append(cast(Execution, starting))
        yield sfn


def test_moto_as_pinned_fails_on_an_execution_that_is_still_starting(sfn_with_a_starting_execution: Any) -> None:
    with pytest.raises(AttributeError):
        sfn_with_a_starting_execution.send_task_success(taskToken="unknown", output="{}")


def test_with_the_adapter_an_unknown_token_is_invalid_as_on_aws(sfn_with_a_starting_execution: Any) -> None:
    with task_tokens_reach_started_executions(), pytest.raises(ClientError) as refused:
        sfn_with_a_starting_execution.send_task_success(taskToken="unknown", output="{}")

    assert refused.value.response["Error"]["Code"] == "InvalidToken"


# --------------------------------------------------------------------------- stoppable waits
@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _machine(sfn: Any, definition: dict[str, Any]) -> str:
    arn: str = sfn.create_state_machine(name=uuid.uuid4().hex[:12], definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return arn


def _start(sfn: Any, machine: str) -> str:
    arn: str = sfn.start_execution(stateMachineArn=machine, name=uuid.uuid4().hex, input="{}")["executionArn"]
    return arn


def _status_within(sfn: Any, execution: str, seconds: float, until: tuple[str, ...]) -> str:
    deadline = time.monotonic() + seconds
    while (
        status := sfn.describe_execution(executionArn=execution)["status"]
    ) not in until and time.monotonic() < deadline:
        time.sleep(0.02)
    return str(status)


def _parked_on_a_token(sfn: Any, execution: str) -> None:
    deadline = time.monotonic() + 5
    while not any(e["type"] == "TaskSubmitted" for e in sfn.get_execution_history(executionArn=execution)["events"]):
        assert time.monotonic() < deadline, "the execution never reached its callback task"
        time.sleep(0.01)


# A callback task whose token nobody sends; it times out after one second.
TOKEN_TIMEOUT_SECONDS = 1


def _waits_for_a_token(sfn: Any) -> str:
    queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=uuid.uuid4().hex)["QueueUrl"]
    return _machine(
        sfn,
        {
            "StartAt": "Wait for a token",
            "States": {
                "Wait for a token": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": TOKEN_TIMEOUT_SECONDS,
                    "End": True,
                }
            },
        },
    )


def _timed_out_after(sfn: Any, execution: str, seconds: float) -> bool:
    """Whether the task's timeout shows in the history within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(e["type"] == "TaskTimedOut" for e in sfn.get_execution_history(executionArn=execution)["events"]):
            return True
        time.sleep(0.05)
    return False


def test_moto_as_pinned_keeps_a_stopped_execution_waiting_for_its_token(sfn: Any) -> None:
    execution = _start(sfn, _waits_for_a_token(sfn))
    _parked_on_a_token(sfn, execution)

    sfn.stop_execution(executionArn=execution)

    assert _timed_out_after(sfn, execution, TOKEN_TIMEOUT_SECONDS + 3)


def test_a_stopped_execution_stops_waiting_for_its_token(sfn: Any) -> None:
    with stoppable_task_token_waits():
        execution = _start(sfn, _waits_for_a_token(sfn))
        _parked_on_a_token(sfn, execution)

        sfn.stop_execution(executionArn=execution)

        assert _status_within(sfn, execution, 5, until=("ABORTED", "FAILED")) == "ABORTED"
        assert not _timed_out_after(sfn, execution, TOKEN_TIMEOUT_SECONDS + 1)


def test_a_finished_sync_task_leaves_no_wait_behind_once_its_execution_ends(sfn: Any) -> None:
    # A .sync task waits for its child and, beside it, for a task token that never comes; that
    # second wait must end with the execution, not poll until the task's default timeout.
    child = _machine(sfn, {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    parent = _machine(
        sfn,
        {
            "StartAt": "Run the child",
            "States": {
                "Run the child": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::states:startExecution.sync:2",
                    "Parameters": {"StateMachineArn": child, "Input": {}},
                    "End": True,
                }
            },
        },
    )
    with stoppable_task_token_waits(), nested_workflows():
        execution = _start(sfn, parent)
        assert _status_within(sfn, execution, 5, until=("SUCCEEDED", "FAILED", "ABORTED")) == "SUCCEEDED"

        deadline = time.monotonic() + 2
        while (left := [t for t in threading.enumerate() if t.name.startswith("WaitForTaskToken_SyncTask")]) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert left == []
