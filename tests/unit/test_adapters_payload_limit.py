"""``step_functions_payload_limit``: 256 KiB in UTF-8 bytes, on inputs, results and outputs, uncatchable."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.adapters import MAX_PAYLOAD_BYTES, payload_size_bytes, step_functions_payload_limit
from tests.unit.sfn_support import Cloud, cloud_fixture, lambda_task  # noqa: F401  (the cloud fixture)

# 2 bytes in UTF-8, 6 in escaped JSON ("\u0436").
LETTER = "ж"
# About 200,000 bytes in UTF-8 (under the limit), 600,000 escaped (over it).
UNDER_IN_UTF8 = {"text": LETTER * 100_000}
# About 280,000 bytes in UTF-8.
OVER_IN_UTF8 = {"text": LETTER * 140_000}
# Every handler a state could have for the error: none of them may run.
CATCH_EVERYTHING = {
    "Retry": [{"ErrorEquals": ["States.DataLimitExceeded"], "MaxAttempts": 2, "IntervalSeconds": 1}],
    "Catch": [
        {"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Handled"},
        {"ErrorEquals": ["States.ALL"], "Next": "Handled"},
    ],
}
HANDLED = {"Type": "Pass", "Result": {"handled": True}, "End": True}


def _returns(value: Any, calls: list[Any]) -> Any:
    def handler(event: Any, context: Any) -> Any:
        calls.append(event)
        return value

    return handler


def _machine(cloud: Cloud, returned: Any, calls: list[Any], **task: Any) -> str:
    function = cloud.function(_returns(returned, calls))
    return cloud.machine({"StartAt": "Step", "States": {"Step": lambda_task(function, **task), "Handled": HANDLED}})


def test_the_count_is_compact_unescaped_utf8() -> None:
    assert payload_size_bytes({"a": [1, "жук"]}) == len('{"a":[1,"жук"]}'.encode())
    assert payload_size_bytes(LETTER * 100_000) == 200_002
    assert payload_size_bytes("🙂") == 6
    assert payload_size_bytes("\ud800") == 5  # a lone surrogate is counted, not an error


def test_moto_as_pinned_fails_a_result_that_is_under_the_limit_in_utf8(cloud: Cloud) -> None:
    description = cloud.run(_machine(cloud, UNDER_IN_UTF8, []))

    assert (description["status"], description["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_a_result_under_the_limit_in_utf8_passes_though_escaped_it_is_over(cloud: Cloud) -> None:
    with step_functions_payload_limit():
        description = cloud.run(_machine(cloud, UNDER_IN_UTF8, []))

    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == UNDER_IN_UTF8


def test_moto_as_pinned_lets_a_catch_handle_the_data_limit(cloud: Cloud) -> None:
    description = cloud.run(_machine(cloud, OVER_IN_UTF8, [], **CATCH_EVERYTHING, Next="Handled", End=None))

    assert (description["status"], json.loads(description["output"])) == ("SUCCEEDED", {"handled": True})


@pytest.mark.parametrize("handlers", [{}, CATCH_EVERYTHING], ids=["bare", "with-retry-and-catch"])
def test_a_result_over_the_limit_in_utf8_fails_the_execution_whatever_the_state_handles(
    cloud: Cloud, handlers: dict[str, Any]
) -> None:
    calls: list[Any] = []
    function = cloud.function(_returns(OVER_IN_UTF8, calls))
    task = lambda_task(function, **handlers, **({"Next": "Handled", "End": None} if handlers else {}))
    machine = cloud.machine({"StartAt": "Step", "States": {"Step": task, "Handled": HANDLED}})

    with step_functions_payload_limit():
        description = cloud.run(machine)

    assert (description["status"], description["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert len(calls) == 1  # not retried


def test_a_state_output_over_the_limit_fails_even_when_the_result_alone_fits(cloud: Cloud) -> None:
    # The input (200,000 bytes) and the result (200,000 bytes) fit; the output keeps both.
    calls: list[Any] = []
    function = cloud.function(_returns(UNDER_IN_UTF8, calls))
    task = lambda_task(function, ResultSelector={"text.$": "$.Payload"}, ResultPath="$.result", OutputPath="$")
    machine = cloud.machine({"StartAt": "Step", "States": {"Step": task}})

    with step_functions_payload_limit():
        description = cloud.run(machine, UNDER_IN_UTF8)

    assert (description["status"], description["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert len(calls) == 1


def test_a_task_input_over_the_limit_after_parameters_fails_before_the_call(cloud: Cloud) -> None:
    calls: list[Any] = []
    function = cloud.function(_returns({}, calls))
    parameters = {"FunctionName": function, "Payload": {"a.$": "$.text", "b.$": "$.text"}}
    task = lambda_task(function, Parameters=parameters, **CATCH_EVERYTHING, Next="Handled", End=None)
    machine = cloud.machine({"StartAt": "Step", "States": {"Step": task, "Handled": HANDLED}})

    with step_functions_payload_limit():
        description = cloud.run(machine, UNDER_IN_UTF8)

    assert (description["status"], description["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert calls == []


def _input_of_bytes(size: int) -> str:
    text = '{"text":"' + "x" * (size - len('{"text":""}')) + '"}'
    assert len(text.encode()) == size
    return text


def test_moto_as_pinned_starts_an_execution_with_an_input_over_the_limit(cloud: Cloud) -> None:
    machine = cloud.machine({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "ok", "End": True}}})

    cloud.sfn.start_execution(stateMachineArn=machine, name="too-large", input=_input_of_bytes(MAX_PAYLOAD_BYTES + 1))


def test_an_execution_input_of_256_kib_is_accepted_one_byte_more_is_refused(cloud: Cloud) -> None:
    machine = cloud.machine({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "ok", "End": True}}})
    with step_functions_payload_limit():
        assert cloud.run(machine, input_json=_input_of_bytes(MAX_PAYLOAD_BYTES))["status"] == "SUCCEEDED"
        with pytest.raises(ClientError) as refused:
            cloud.sfn.start_execution(
                stateMachineArn=machine, name="too-large", input=_input_of_bytes(MAX_PAYLOAD_BYTES + 1)
            )

    assert refused.value.response["Error"]["Code"] == "InvalidExecutionInput"


def test_an_execution_input_under_the_limit_in_utf8_runs(cloud: Cloud) -> None:
    machine = cloud.machine({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}})
    with step_functions_payload_limit():
        description = cloud.run(machine, UNDER_IN_UTF8)

    assert description["status"] == "SUCCEEDED"


def test_send_task_success_refuses_an_output_over_the_limit_and_takes_one_under_it(cloud: Cloud) -> None:
    tokens: list[str] = []
    arrived = threading.Event()

    def hand_out_token(event: Any, context: Any) -> Any:
        tokens.append(event["token"])
        arrived.set()
        return {}

    function = cloud.function(hand_out_token)
    machine = cloud.machine(
        {
            "StartAt": "Wait",
            "States": {
                "Wait": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": function, "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 60,
                    "End": True,
                }
            },
        }
    )
    with step_functions_payload_limit():
        execution = cloud.start(machine)
        assert arrived.wait(10)
        with pytest.raises(ClientError) as refused:
            cloud.sfn.send_task_success(taskToken=tokens[0], output=json.dumps(OVER_IN_UTF8, ensure_ascii=False))
        cloud.sfn.send_task_success(taskToken=tokens[0], output=json.dumps(UNDER_IN_UTF8, ensure_ascii=False))
        description = cloud.wait(execution)

    assert refused.value.response["Error"]["Code"] == "InvalidOutput"
    assert description["status"] == "SUCCEEDED"
