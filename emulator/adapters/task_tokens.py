"""Task tokens: sent to executions still starting, and waits that end with their execution."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess, CallbackOutcomeTimedOut
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
