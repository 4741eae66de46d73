"""The StartExecution and StopExecution adapters of emulator.execution_api, against moto's Step Functions backend."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from emulator.adapters import immediate_stops
from emulator.execution_api import named_and_checked_executions

ROLE = "arn:aws:iam::123456789012:role/r"
WAITING = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 300, "End": True}}}


@pytest.fixture
def sfn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        named_and_checked_executions(),
        immediate_stops(),
    ):
        yield boto3.client("stepfunctions", region_name="us-east-1")


@pytest.fixture
def machine(sfn: Any) -> str:
    arn: str = sfn.create_state_machine(name="m", definition=json.dumps(WAITING), roleArn=ROLE)["stateMachineArn"]
    return arn


def test_an_execution_started_without_a_name_is_named_with_a_fresh_uuid(sfn: Any, machine: str) -> None:
    first = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]

    names = [arn.rsplit(":", 1)[1] for arn in (first, second)]
    assert names[0] != names[1]
    assert all(str(uuid.UUID(name)) == name for name in names)
    named = sfn.start_execution(stateMachineArn=machine, name="chosen", input="{}")["executionArn"]
    assert named.endswith(":chosen")


def test_input_that_is_not_json_is_refused_with_invalid_execution_input(sfn: Any, machine: str) -> None:
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, input="{not json")

    assert refused.value.response["Error"]["Code"] == "InvalidExecutionInput"
    assert "Invalid State Machine Execution Input" in refused.value.response["Error"]["Message"]
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []


def test_an_execution_stopped_before_its_worker_has_started_ends_aborted(sfn: Any, machine: str) -> None:
    # Hold the worker thread before it builds its environment: the moment a busy machine leaves open.
    parse = ExecutionWorker._get_evaluation_entrypoint
    parsing, resume = threading.Event(), threading.Event()

    def held_parse(self: ExecutionWorker) -> Any:
        parsing.set()
        assert resume.wait(30)
        return parse(self)

    with mock.patch.object(ExecutionWorker, "_get_evaluation_entrypoint", held_parse):
        arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        assert parsing.wait(30)
        with ThreadPoolExecutor(max_workers=1) as pool:
            stopping = pool.submit(sfn.stop_execution, executionArn=arn)
            resume.set()
            stopping.result(timeout=30)

    # moto ends a stopped execution on its worker thread, a moment after StopExecution answers.
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert status == "ABORTED"
