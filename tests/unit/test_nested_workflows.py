"""The emulator's adapters for nested workflows and AWS SDK bodies, on moto's own interpreter.

Each test runs real state machines in moto (``execute_state_machine``): a parent that starts a
child through ``arn:aws:states:::states:startExecution`` (plain, ``.sync``, ``.sync:2``), and a
state that reads an S3 object through ``aws-sdk:s3:getObject``. The first test of each adapter
shows that moto as shipped fails, so the adapter is still needed with the pinned moto.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.adapters import (
    nested_workflows,
    redrivable_executions,
    sdk_bodies_as_text,
    sdk_step_functions_calls,
    step_functions_parameters,
    step_functions_response,
    stoppable_task_token_waits,
)
from tests.unit.sfn_support import REGION, Cloud, cloud_fixture  # noqa: F401  (the cloud fixture)

START = "arn:aws:states:::states:startExecution"
CHILD_OUTPUT = {"greeting": "hello", "items": [1, 2]}
CHILD_SUCCEEDS = {"StartAt": "Answer", "States": {"Answer": {"Type": "Pass", "Result": CHILD_OUTPUT, "End": True}}}
CHILD_FAILS = {
    "StartAt": "Fail",
    "States": {"Fail": {"Type": "Fail", "Error": "ChildBrokeError", "Cause": "the child's own reason"}},
}
CHILD_ECHOES_INPUT = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


def children(cloud: Cloud, child_arn: str) -> list[dict[str, Any]]:
    return cloud.sfn.list_executions(stateMachineArn=child_arn)["executions"]


def parent_of(child_arn: str, resource: str, **parameters: Any) -> dict[str, Any]:
    """A parent that starts ``child_arn`` and returns the task's result; a failed task is caught as is."""
    return {
        "StartAt": "Start the child",
        "States": {
            "Start the child": {
                "Type": "Task",
                "Resource": resource,
                "Parameters": {"StateMachineArn": child_arn, **parameters},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


# --------------------------------------------------------------------------- nested workflows
def test_moto_as_shipped_cannot_start_a_child(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_SUCCEEDS)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={"a": 1}))

    description = cloud.run(parent)

    # The parameters reach boto3 in the ASL's PascalCase; the task cannot even start the child.
    assert json.loads(description["output"])["Error"] == "States.Runtime"
    assert children(cloud, child) == []


def test_sync2_returns_the_childs_output_as_json(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_SUCCEEDS)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={"a": 1}, Name="child-of-run-1"))

    with nested_workflows():
        description = cloud.run(parent)

    assert description["status"] == "SUCCEEDED"
    result = json.loads(description["output"])
    assert result["Output"] == CHILD_OUTPUT
    assert result["Input"] == {"a": 1}
    assert result["Status"] == "SUCCEEDED"
    assert result["Name"] == "child-of-run-1"
    assert result["ExecutionArn"].endswith(":child-of-run-1")
    assert isinstance(result["StartDate"], int) and isinstance(result["StopDate"], int)


def test_sync_returns_the_childs_output_as_a_string(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_SUCCEEDS)
    parent = cloud.machine(parent_of(child, f"{START}.sync", Input={"a": 1}))

    with nested_workflows():
        result = json.loads(cloud.run(parent)["output"])

    assert isinstance(result["Output"], str)
    assert json.loads(result["Output"]) == CHILD_OUTPUT


def test_plain_start_returns_at_once_with_the_childs_arn(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_ECHOES_INPUT)
    parent = cloud.machine(parent_of(child, START, Input={"b": 2}))

    with nested_workflows():
        result = json.loads(cloud.run(parent)["output"])
        (started,) = children(cloud, child)

    assert set(result) == {"ExecutionArn", "StartDate"}
    assert result["ExecutionArn"] == started["executionArn"]
    assert isinstance(result["StartDate"], int)


def test_an_input_given_with_a_path_reaches_the_child_as_json(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_ECHOES_INPUT)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", **{"Input.$": "$.order"}))

    with nested_workflows():
        result = json.loads(cloud.run(parent, {"order": {"id": "42", "lines": [1, 2]}})["output"])

    assert result["Output"] == {"id": "42", "lines": [1, 2]}


def test_starts_without_a_name_get_names_of_their_own(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_ECHOES_INPUT)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={}))

    with nested_workflows():
        first, second = cloud.run(parent), cloud.run(parent)

    assert first["status"] == second["status"] == "SUCCEEDED"
    names = {execution["name"] for execution in children(cloud, child)}
    assert len(names) == 2 and "None" not in names


def _token_listeners() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("WaitForTaskToken_SyncTask_")]


def test_a_sync_task_leaves_no_task_token_listener_behind(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_SUCCEEDS)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={}))

    with nested_workflows(), stoppable_task_token_waits():
        assert cloud.run(parent)["status"] == "SUCCEEDED"
        # moto as shipped starts one listener per .sync task, which never ends (it polls, here).
        assert _token_listeners() == []


def test_a_failed_child_fails_the_task_with_its_description_as_cause(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_FAILS)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={}))

    with nested_workflows():
        caught = json.loads(cloud.run(parent)["output"])

    assert caught["Error"] == "States.TaskFailed"
    child_description = json.loads(caught["Cause"])
    assert child_description["Status"] == "FAILED"
    assert child_description["Error"] == "ChildBrokeError"
    assert child_description["Cause"] == "the child's own reason"


def test_a_start_that_aws_refuses_fails_with_the_service_error_name(cloud: Cloud) -> None:
    child = cloud.machine(CHILD_SUCCEEDS)
    parent = cloud.machine(parent_of(child, f"{START}.sync:2", Input={}, Name="same-name"))

    with nested_workflows():
        cloud.run(parent)
        caught = json.loads(cloud.run(parent)["output"])

    # A second start with the name of a finished execution is refused: the child runs once.
    assert caught["Error"] == "StepFunctions.ExecutionAlreadyExistsException"
    assert len(children(cloud, child)) == 1


def test_responses_keep_the_executions_own_data_as_it_is() -> None:
    started = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
    response = {
        "executionArn": "arn",
        "startDate": started,
        "inputDetails": {"included": True},
        "input": {"camelCase": 1, "when": "kept"},
        "output": {"lowerKey": {"nested": True}},
    }

    converted = step_functions_response(response)

    assert converted == {
        "ExecutionArn": "arn",
        "StartDate": int(started.timestamp() * 1000),
        "InputDetails": {"Included": True},
        "Input": {"camelCase": 1, "when": "kept"},
        "Output": {"lowerKey": {"nested": True}},
    }


def test_parameters_take_boto3s_names_and_keep_a_given_name() -> None:
    assert step_functions_parameters({"StateMachineArn": "arn", "Input": "{}", "Name": "n"}) == {
        "stateMachineArn": "arn",
        "input": "{}",
        "name": "n",
    }


# --------------------------------------------------------------------------- AWS SDK bodies
READS_AN_OBJECT = {
    "StartAt": "Read",
    "States": {
        "Read": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.key"},
            "ResultSelector": {"text.$": "$.Body"},
            "End": True,
        }
    },
}


@contextlib.contextmanager
def an_object(text: str) -> Iterator[dict[str, str]]:
    bucket = f"bucket-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="incoming/readings.csv", Body=text.encode())
    yield {"bucket": bucket, "key": "incoming/readings.csv"}


def test_moto_as_shipped_hands_a_stream_to_the_state(cloud: Cloud) -> None:
    with an_object("a,1,2\n") as location, pytest.raises(TypeError, match="Streaming"):
        # The stream becomes the execution's output, which moto cannot even describe.
        cloud.run(cloud.machine(READS_AN_OBJECT), location)


def test_an_objects_body_reaches_the_state_as_text(cloud: Cloud) -> None:
    text = "0000-0001,1483906366,10.10\n0000-0011,1483906376,-5.10\n"
    with an_object(text) as location, sdk_bodies_as_text():
        description = cloud.run(cloud.machine(READS_AN_OBJECT), location)

    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert json.loads(description["output"]) == {"text": text}


# --------------------------------------------------------------------------- StartExecution's name rule
CHILD_WAITS = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 30, "End": True}}}


def test_a_start_under_a_running_executions_name_returns_it_with_the_same_input_and_is_refused_with_another(
    cloud: Cloud,
) -> None:
    machine = cloud.machine(CHILD_WAITS)
    first = cloud.sfn.start_execution(stateMachineArn=machine, name="same-name", input='{"a": 1}')["executionArn"]

    again = cloud.sfn.start_execution(stateMachineArn=machine, name="same-name", input='{"a": 1}')["executionArn"]
    with pytest.raises(ClientError) as other_input:
        cloud.sfn.start_execution(stateMachineArn=machine, name="same-name", input='{"a": 2}')
    cloud.sfn.stop_execution(executionArn=first)
    cloud.wait(first)
    with pytest.raises(ClientError) as closed:
        cloud.sfn.start_execution(stateMachineArn=machine, name="same-name", input='{"a": 1}')

    # moto as pinned follows Step Functions' rule already: no adapter needed, this test keeps it so.
    assert again == first
    assert other_input.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert closed.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert len(children(cloud, machine)) == 1


# --------------------------------------------------------------------------- AWS SDK calls of Step Functions
def sdk_call(action: str, **parameters: Any) -> dict[str, Any]:
    """A machine that calls ``aws-sdk:sfn:<action>`` with ``parameters`` and returns the response, or catches its failure."""
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": f"arn:aws:states:::aws-sdk:sfn:{action}",
                "Parameters": parameters,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_moto_as_shipped_hands_step_functions_the_asls_parameter_names(cloud: Cloud) -> None:
    child = cloud.run(cloud.machine(CHILD_SUCCEEDS), {"a": 1})
    caller = cloud.machine(sdk_call("describeExecution", **{"ExecutionArn.$": "$.arn"}))

    caught = json.loads(cloud.run(caller, {"arn": child["executionArn"]})["output"])

    assert caught["Error"] == "States.Runtime"


def test_a_described_execution_comes_back_in_the_asls_names(cloud: Cloud) -> None:
    child = cloud.run(cloud.machine(CHILD_SUCCEEDS), {"a": 1})
    caller = cloud.machine(sdk_call("describeExecution", **{"ExecutionArn.$": "$.arn"}))

    with sdk_step_functions_calls(), redrivable_executions():
        described = json.loads(cloud.run(caller, {"arn": child["executionArn"]})["output"])

    assert described["ExecutionArn"] == child["executionArn"]
    assert described["Status"] == "SUCCEEDED"
    assert described["RedriveStatus"] == "NOT_REDRIVABLE"
    # The executions' own data stays the JSON text the API gives.
    assert json.loads(described["Input"]) == {"a": 1}
    assert json.loads(described["Output"]) == CHILD_OUTPUT
    assert isinstance(described["StartDate"], int)


def test_a_redrive_through_the_sdk_runs_the_execution_again_and_a_refusal_has_aws_error_name(cloud: Cloud) -> None:
    failed = cloud.run(cloud.machine(CHILD_FAILS))
    caller = cloud.machine(sdk_call("redriveExecution", **{"ExecutionArn.$": "$.arn"}))

    with sdk_step_functions_calls(), redrivable_executions():
        redriven = json.loads(cloud.run(caller, {"arn": failed["executionArn"]})["output"])
        again = cloud.wait(failed["executionArn"])
        succeeded = cloud.run(cloud.machine(CHILD_SUCCEEDS))
        refused = json.loads(cloud.run(caller, {"arn": succeeded["executionArn"]})["output"])

    assert "RedriveDate" in redriven
    assert again["status"] == "FAILED" and again["redriveCount"] == 1
    assert refused["Error"] == "Sfn.ExecutionNotRedrivableException"
