"""Task tokens: sent to executions still starting, and waits that end with their execution."""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess, CallbackOutcomeTimedOut
from moto.stepfunctions.parser.asl.eval.states import ContextObject, TaskData
from moto.stepfunctions.parser.models import StepFunctionsParserBackend


@contextlib.contextmanager
def task_tokens_reach_started_executions() -> Iterator[None]:
    """Let ``SendTaskSuccess``/``Failure``/``Heartbeat`` skip executions still starting (no environment yet)."""
    original = StepFunctionsParserBackend._get_executions

    def executions(self: StepFunctionsParserBackend, execution_status: Any = None) -> list[Any]:
        found = original(self, execution_status)
        return [execution for execution in found if getattr(execution.exec_worker, "env", None) is not None]

    with mock.patch.object(StepFunctionsParserBackend, "_get_executions", executions):
        yield


@contextlib.contextmanager
def stoppable_task_token_waits(poll_seconds: float = 0.02) -> Iterator[None]:
    """End a ``.waitForTaskToken`` wait as soon as its execution is stopped, as Step Functions does."""
    original = StateTaskServiceCallback._eval_wait_for_task_token

    def wait(self: Any, env: Any, timeout_seconds: float, callback_endpoint: Any, heartbeat_endpoint: Any) -> Any:
        if heartbeat_endpoint is not None:
            return original(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)  # type: ignore[arg-type]
        # is_running, not program_state(): the latter deep-copies the state on every look.
        if not env.is_running() or not isinstance(timeout_seconds, int | float):
            # Over before the wait began: moto skips evaluations once stopped, so the timeout
            # it popped from its stack may not even be a number.
            return CallbackOutcomeSuccess(callback_id=callback_endpoint.callback_id, output="null")
        deadline = time.monotonic() + timeout_seconds
        while True:
            outcome = callback_endpoint.wait(timeout=max(0.0, min(poll_seconds, deadline - time.monotonic())))
            if outcome is not None:
                return outcome
            if not env.is_running():
                # The execution is over (stopped, or ended while a finished .sync task's companion
                # wait still ran); the task's result is never used. Without this a .sync task's
                # wait would poll until its default timeout, years after its execution ended.
                return CallbackOutcomeSuccess(callback_id=callback_endpoint.callback_id, output="null")
            if time.monotonic() >= deadline:
                return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)

    with mock.patch.object(StateTaskServiceCallback, "_eval_wait_for_task_token", wait):
        yield


# --------------------------------------------------------------------------- task tokens as long as AWS's
# SendTaskSuccess/Failure/Heartbeat accept tokens of up to this many characters.
MAX_TASK_TOKEN_LENGTH = 2048
# AWS's tokens are opaque base64 text of several hundred characters; the emulator's default is
# longer than most, so whatever stores or forwards tokens is measured at a realistic size or more.
DEFAULT_TASK_TOKEN_LENGTH = 1024


def long_task_token(length: int = DEFAULT_TASK_TOKEN_LENGTH) -> str:
    """A unique, opaque, base64 task token of exactly ``length`` characters."""
    if not 64 <= length <= MAX_TASK_TOKEN_LENGTH:
        raise ValueError(f"a task token length must be between 64 and {MAX_TASK_TOKEN_LENGTH}, not {length}")
    # A UUID first keeps tokens unique; random bytes after it make the length.
    raw = uuid.uuid4().bytes + secrets.token_bytes(length)
    return base64.b64encode(raw).decode("ascii")[:length]


@contextlib.contextmanager
def realistic_task_tokens(length: int = DEFAULT_TASK_TOKEN_LENGTH) -> Iterator[None]:
    """Give ``$$.Task.Token`` AWS's kind of token: ``length`` characters of base64, not a 36-character UUID.

    The token is only an id to the interpreter (``callback_pool_manager``), so SendTaskSuccess,
    SendTaskFailure and SendTaskHeartbeat accept it as they accept moto's own.
    """
    long_task_token(length)  # refuses a length AWS would not hand out

    def update_task_token(self: ContextObject) -> str:
        token = long_task_token(length)
        self.context_object_data["Task"] = TaskData(Token=token)
        return token

    with mock.patch.object(ContextObject, "update_task_token", update_task_token):
        yield
