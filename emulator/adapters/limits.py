"""Step Functions' payload limit: 256 KiB counted in UTF-8 bytes, everywhere AWS applies it, uncatchable."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, Final
from unittest import mock

from moto.core.exceptions import AWSError
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

# "256 KiB of data as a UTF-8 encoded string" (Step Functions service quotas).
MAX_PAYLOAD_BYTES: Final[int] = 256 * 1024
_DATA_LIMIT_EXCEEDED = StatesErrorNameType.StatesStatesDataLimitExceeded


class InvalidOutput(AWSError):
    """SendTaskSuccess's error for an output it does not accept (moto's parser has no working one)."""

    TYPE = "InvalidOutput"
    STATUS = 400


# The modules of moto's interpreter that imported its size check by name.
_QUOTA_USERS = (state_module, state_task_lambda, state_task_service)


def payload_size_bytes(value: Any) -> int:
    """The size Step Functions counts for a state's data: its JSON text in UTF-8, unescaped, compact.

    moto counts ``json.dumps`` with its defaults: every non-ASCII character escaped to six bytes
    (``\\u0436`` for the two bytes of "ж") and a space after every separator.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return _text_size_bytes(text)


def _text_size_bytes(text: str | None) -> int:
    # A lone surrogate (valid in JSON text as an escape) counts as the 3 bytes it would take;
    # refusing to count it would fail the execution with States.Runtime instead.
    return len((text or "").encode("utf-8", "surrogatepass"))


@contextlib.contextmanager
def step_functions_payload_limit(max_bytes: int = MAX_PAYLOAD_BYTES) -> Iterator[None]:
    """Hold executions to Step Functions' 256 KiB, counted in UTF-8 bytes, wherever AWS checks it.

    moto's interpreter checks a task's raw result and each state's output, but counts escaped
    JSON (up to six times the UTF-8 size of non-ASCII text), and lets ``Catch``/``Retry`` handle
    the failure. Here:

    * the count is UTF-8 bytes of compact JSON, at most ``max_bytes`` (moto's own checks of a
      task's raw result and a state's output after ResultSelector/ResultPath/OutputPath, which
      also bounds the execution's output);
    * a state's input after ``InputPath`` and a task's input after ``Parameters`` are checked too;
    * ``States.DataLimitExceeded`` matches no ``ErrorEquals`` (not even ``States.ALL``): no Retry
      or Catch handles it and the execution fails with it, as on AWS;
    * StartExecution refuses a larger input (``InvalidExecutionInput``) and SendTaskSuccess a
      larger output (``InvalidOutput``), before anything runs.
    """

    def is_within_size_quota(value: Any) -> bool:
        return payload_size_bytes(value) <= max_bytes

    original_error_equals = ErrorEqualsDecl._eval_body

    def error_equals(self: ErrorEqualsDecl, env: Any) -> None:
        error_name = env.stack[-1]
        if isinstance(error_name, StatesErrorName) and error_name.typ == _DATA_LIMIT_EXCEEDED:
            env.stack.pop()
            env.stack.append(False)  # a terminal error: no retrier or catcher matches it
            return
        original_error_equals(self, env)

    original_state_input = CommonStateField._eval_state_input

    def eval_state_input(self: CommonStateField, env: Any) -> None:
        original_state_input(self, env)
        CommonStateField._verify_size_quota(self, env=env, value=env.stack[-1])

    original_parameters = StateTask._eval_parameters

    def eval_parameters(self: StateTask, env: Any) -> dict[str, Any]:
        parameters: dict[str, Any] = original_parameters(self, env)
        CommonStateField._verify_size_quota(self, env=env, value=parameters)
        return parameters

    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: StepFunctionsParserBackend,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if _text_size_bytes(execution_input) > max_bytes:
            raise InvalidExecutionInput(f"Execution input is larger than the maximum of {max_bytes} bytes (UTF-8)")
        return original_start(self, state_machine_arn, name, execution_input, *args, **kwargs)

    original_success = StepFunctionsParserBackend.send_task_success

    def send_task_success(self: StepFunctionsParserBackend, task_token: str, outcome: str) -> Any:
        if _text_size_bytes(outcome) > max_bytes:
            raise InvalidOutput(f"Output is larger than the maximum of {max_bytes} bytes (UTF-8)")
        return original_success(self, task_token, outcome)

    with contextlib.ExitStack() as patches:
        for module in _QUOTA_USERS:
            patches.enter_context(mock.patch.object(module, "is_within_size_quota", is_within_size_quota))
        patches.enter_context(mock.patch.object(ErrorEqualsDecl, "_eval_body", error_equals))
        patches.enter_context(mock.patch.object(CommonStateField, "_eval_state_input", eval_state_input))
        patches.enter_context(mock.patch.object(StateTask, "_eval_parameters", eval_parameters))
        patches.enter_context(mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution))
        patches.enter_context(mock.patch.object(StepFunctionsParserBackend, "send_task_success", send_task_success))
        yield
