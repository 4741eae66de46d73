"""emulator.adapters.task_tokens_reach_started_executions, against moto's Step Functions backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from emulator.adapters import task_tokens_reach_started_executions


@pytest.fixture
def sfn_with_a_starting_execution(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r")
        machine = stepfunctions_parser_backends["123456789012"]["us-east-1"].state_machines[0]
        # RUNNING, but its worker has not built its evaluation environment yet.
        machine.executions.append(SimpleNamespace(status="RUNNING", exec_worker=SimpleNamespace(env=None)))
        yield sfn


def test_moto_as_pinned_fails_on_an_execution_that_is_still_starting(sfn_with_a_starting_execution: Any) -> None:
    with pytest.raises(AttributeError):
        sfn_with_a_starting_execution.send_task_success(taskToken="unknown", output="{}")


def test_with_the_adapter_an_unknown_token_is_invalid_as_on_aws(sfn_with_a_starting_execution: Any) -> None:
    with task_tokens_reach_started_executions(), pytest.raises(ClientError) as refused:
        sfn_with_a_starting_execution.send_task_success(taskToken="unknown", output="{}")

    assert refused.value.response["Error"]["Code"] == "InvalidToken"
