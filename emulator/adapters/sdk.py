"""AWS SDK integrations: streaming bodies handed over as text."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.response import StreamingBody
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)


@contextlib.contextmanager
def sdk_bodies_as_text() -> Iterator[None]:
    """Give a state an AWS SDK integration's streaming body as text, as Step Functions does.

    ``arn:aws:states:::aws-sdk:s3:getObject`` returns ``Body`` as the object's content (UTF-8 text)
    on AWS; moto hands over boto3's ``StreamingBody``, which fails the execution as soon as a
    state reads or serializes it.
    """

    def normalise_response(self: StateTaskServiceAwsSdk, response: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(response, dict):
            for name, value in response.items():
                if isinstance(value, StreamingBody):
                    response[name] = value.read().decode("utf-8")

    with mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response", normalise_response):
        yield
