"""StartExecution and StopExecution answered as Step Functions answers them (moto pinned in requirements-dev.txt).

* ``named_and_checked_executions``: without ``name``, moto names the execution ``None`` (so the
  next unnamed start fails with ``ExecutionAlreadyExists``), and input that is not JSON fails
  with an empty error code. Step Functions names such an execution with a UUID and refuses the
  input with ``InvalidExecutionInput``.
* ``stops_reach_starting_executions``: moto's ``StopExecution`` fails with ``AttributeError`` (a
  500) on an execution whose worker thread has not built its environment yet, which on a busy
  machine is any execution started a moment before. Step Functions stops it; here the stop
  waits for the environment, then stops the execution as it stops any other.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

# How long a stop waits for an execution's worker thread to start evaluating; it only has to
# parse the definition, so this bounds a thread that died, not a slow one.
ENVIRONMENT_READY_TIMEOUT = 60.0
_ENVIRONMENT, _READY = "_emulator_env", "_emulator_env_ready"


@contextlib.contextmanager
def named_and_checked_executions() -> Iterator[None]:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: StepFunctionsParserBackend, state_machine_arn: str, name: Any = None, execution_input: Any = None, *args: Any, **kwargs: Any) -> Any:
        if execution_input is not None:
            try:
                json.loads(execution_input)
            except ValueError as error:
                raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{error}'") from None
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, *args, **kwargs)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield


class _EnvironmentSlot:
    """``ExecutionWorker.env`` that also tells, through an event, when the worker has set it."""

    def __get__(self, worker: Any, owner: type | None = None) -> Any:
        if worker is None:
            return self
        return worker.__dict__.get(_ENVIRONMENT)

    def __set__(self, worker: Any, value: Any) -> None:
        worker.__dict__[_ENVIRONMENT] = value
        # The worker's __init__ sets None before its thread starts, so the event exists before any stop.
        ready = worker.__dict__.setdefault(_READY, threading.Event())
        if value is not None:
            ready.set()


@contextlib.contextmanager
def stops_reach_starting_executions(timeout: float = ENVIRONMENT_READY_TIMEOUT) -> Iterator[None]:
    original_stop = ExecutionWorker.stop

    def stop(self: ExecutionWorker, *args: Any, **kwargs: Any) -> None:
        ready = self.__dict__.get(_READY)
        if ready is not None:
            ready.wait(timeout)
        original_stop(self, *args, **kwargs)

    with mock.patch.object(ExecutionWorker, "env", _EnvironmentSlot(), create=True), mock.patch.object(ExecutionWorker, "stop", stop):
        yield
