"""AWS SDK integrations: streaming bodies handed over as text; Step Functions called in its own API's names."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.session
from botocore.response import StreamingBody
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)

from emulator.adapters.nested import step_functions_response

# The aws-sdk service name of Step Functions (``arn:aws:states:::aws-sdk:sfn:<action>``).
STEP_FUNCTIONS_SDK_SERVICE = "sfn"


@contextlib.contextmanager
def sdk_bodies_as_text() -> Iterator[None]:
    """Give a state an AWS SDK integration's streaming body as text, as Step Functions does.

    ``arn:aws:states:::aws-sdk:s3:getObject`` returns ``Body`` as the object's content (UTF-8 text)
    on AWS; moto hands over boto3's ``StreamingBody``, which fails the execution as soon as a
    state reads or serializes it.
    """
    current = StateTaskServiceAwsSdk._normalise_response

    def normalise_response(self: StateTaskServiceAwsSdk, response: Any, *args: Any, **kwargs: Any) -> None:
        current(self, response, *args, **kwargs)
        if isinstance(response, dict):
            for name, value in response.items():
                if isinstance(value, StreamingBody):
                    response[name] = value.read().decode("utf-8")

    with mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response", normalise_response):
        yield


def sdk_parameter_names(parameters: dict[str, Any], api_members: list[str]) -> dict[str, Any]:
    """The ASL's PascalCase parameters under the API's own member names (``ExecutionArn`` -> ``executionArn``).

    A parameter the API does not know keeps its name: boto3 refuses it, as Step Functions would.
    """
    by_lower_name = {member.lower(): member for member in api_members}
    return {by_lower_name.get(name.lower(), name): value for name, value in parameters.items()}


@functools.cache
def _step_functions_members(action: str) -> list[str]:
    """The input members of a Step Functions API action (``describeExecution``), from botocore's model."""
    model = botocore.session.get_session().get_service_model("stepfunctions")
    operation = model.operation_model(action[:1].upper() + action[1:])
    return list(operation.input_shape.members) if operation.input_shape is not None else []


@contextlib.contextmanager
def sdk_step_functions_calls() -> Iterator[None]:
    """Let ``arn:aws:states:::aws-sdk:sfn:<action>`` call Step Functions as on AWS.

    The ASL names an SDK call's parameters in PascalCase (``ExecutionArn``) and reads the response
    in PascalCase (``Status``, ``RedriveStatus``), whatever the service's API calls them. Step
    Functions' own API is camelCase: moto, which keeps the interpreter without its normalisation,
    hands ``ExecutionArn`` to boto3 (refused as an unknown parameter: ``States.Runtime``) and the
    camelCase response to the state. Here the parameters get the API's member names, and the
    response the ASL's names (dates as epoch milliseconds; ``Input`` and ``Output`` stay the JSON
    text the API gives). Errors keep moto's naming, which is AWS's: ``Sfn.<Error>Exception``.
    """
    current_parameters = StateTaskServiceAwsSdk._normalise_parameters
    current_response = StateTaskServiceAwsSdk._normalise_response

    def calls_step_functions(task: StateTaskServiceAwsSdk) -> bool:
        return task.resource.api_name == STEP_FUNCTIONS_SDK_SERVICE

    def normalise_parameters(
        self: StateTaskServiceAwsSdk, parameters: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        current_parameters(self, parameters, *args, **kwargs)
        if calls_step_functions(self):
            renamed = sdk_parameter_names(parameters, _step_functions_members(self.resource.api_action))
            parameters.clear()
            parameters.update(renamed)

    def normalise_response(self: StateTaskServiceAwsSdk, response: Any, *args: Any, **kwargs: Any) -> None:
        current_response(self, response, *args, **kwargs)
        if calls_step_functions(self) and isinstance(response, dict):
            converted = step_functions_response(response)
            response.clear()
            response.update(converted)

    with (
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_parameters", normalise_parameters),
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response", normalise_response),
    ):
        yield
