"""``realistic_task_tokens``: ``$$.Task.Token`` as long as AWS's, still accepted by SendTask*."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.adapters import DEFAULT_TASK_TOKEN_LENGTH, MAX_TASK_TOKEN_LENGTH, long_task_token, realistic_task_tokens
from emulator.stack import OfflineStack
from tests.unit.sfn_support import Cloud, cloud_fixture  # noqa: F401  (the cloud fixture)


def _callback_machine(cloud: Cloud, received: list[str], arrived: threading.Event) -> str:
    def hand_out_token(event: Any, context: Any) -> Any:
        received.append(event["token"])
        arrived.set()
        return {}

    function = cloud.function(hand_out_token)
    return cloud.machine(
        {
            "StartAt": "Wait for a token",
            "States": {
                "Wait for a token": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": function, "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": 60,
                    "End": True,
                }
            },
        }
    )


def _token_of_a_parked_execution(cloud: Cloud) -> tuple[str, str]:
    received: list[str] = []
    arrived = threading.Event()
    execution = cloud.start(_callback_machine(cloud, received, arrived))
    assert arrived.wait(10), "the callback Lambda was never invoked"
    return execution, received[0]


def test_moto_as_pinned_hands_out_36_character_tokens(cloud: Cloud) -> None:
    execution, token = _token_of_a_parked_execution(cloud)
    cloud.sfn.send_task_success(taskToken=token, output="{}")

    assert len(token) == 36
    assert cloud.wait(execution)["status"] == "SUCCEEDED"


@pytest.mark.parametrize("length", [DEFAULT_TASK_TOKEN_LENGTH, MAX_TASK_TOKEN_LENGTH, 300])
def test_a_callback_lambda_gets_a_token_of_the_configured_length_and_sending_it_works(
    cloud: Cloud, length: int
) -> None:
    with realistic_task_tokens(length):
        execution, token = _token_of_a_parked_execution(cloud)
        # No heartbeat (nor HeartbeatSeconds): moto sets up a task's heartbeat endpoint only after its
        # Lambda call returns, so a heartbeat, or a success, sent from inside the call races it.
        cloud.sfn.send_task_success(taskToken=token, output='{"done": true}')

        assert len(token) == length
        description = cloud.wait(execution)
        assert (description["status"], json.loads(description["output"])) == ("SUCCEEDED", {"done": True})


def test_a_long_token_fails_its_task_with_send_task_failure(cloud: Cloud) -> None:
    with realistic_task_tokens():
        execution, token = _token_of_a_parked_execution(cloud)
        cloud.sfn.send_task_failure(taskToken=token, error="Refused", cause="no")

        description = cloud.wait(execution)
        assert (description["status"], description["error"]) == ("FAILED", "Refused")


def test_a_token_that_was_not_handed_out_is_still_invalid(cloud: Cloud) -> None:
    with realistic_task_tokens(), pytest.raises(ClientError) as refused:
        cloud.sfn.send_task_success(taskToken=long_task_token(), output="{}")

    assert refused.value.response["Error"]["Code"] == "InvalidToken"


def test_tokens_are_unique_base64_text() -> None:
    tokens = {long_task_token(100) for _ in range(1000)}

    assert len(tokens) == 1000
    assert all(len(token) == 100 and token.isascii() and " " not in token for token in tokens)


@pytest.mark.parametrize("length", [MAX_TASK_TOKEN_LENGTH + 1, 36])
def test_a_length_aws_would_not_hand_out_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="task token length"):
        OfflineStack(task_token_length=length)
