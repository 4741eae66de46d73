"""StartExecution answered as Step Functions answers it (moto pinned in requirements-dev.txt).

* ``named_and_checked_executions``: without ``name``, moto names the execution ``None`` (so the
  next unnamed start fails with ``ExecutionAlreadyExists``), and input that is not JSON fails
  with an empty error code. Step Functions names such an execution with a UUID and refuses the
  input with ``InvalidExecutionInput``.

A stop of an execution whose worker has not built its environment yet is ``adapters.immediate_stops``'s.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.models import StepFunctionsParserBackend


@contextlib.contextmanager
def named_and_checked_executions() -> Iterator[None]:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if execution_input is not None:
            try:
                json.loads(execution_input)
            except ValueError as error:
                raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, *args, **kwargs)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield
