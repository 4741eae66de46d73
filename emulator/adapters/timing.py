"""ASL time (Wait, Retry, timeouts) scaled so tests keep real timings in the ASL and still run fast."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.utils import TMP_THREADS


class _ScaledSleep:
    """Stands in for the ``time`` module inside moto's retrier: ``sleep`` is scaled, the rest is real."""

    def __init__(self, scale: float) -> None:
        self._scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self._scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


MIN_TASK_TIMEOUT_SECONDS = 0.5


@contextlib.contextmanager
def scaled_waits(scale: float, execution_timeout_scale: float | None = None) -> Iterator[None]:
    """Make ASL time ``scale`` times its declared seconds: ``Wait`` states, ``Retry`` intervals, task
    timeouts (``TimeoutSeconds``/``TimeoutSecondsPath``, which end a ``.waitForTaskToken`` wait) and the
    state machine's own ``TimeoutSeconds`` (``execution_timeout_scale`` times, when given). The history
    still shows the declared values' scaled form.

    The interpreter's own work is not shortened, so an execution timeout scaled like the waits can
    end an execution that merely ran slowly (25 concurrent executions can take 20 s on two busy
    cores, while 1800 s at 0.01 is 18 s); ``OfflineStack`` therefore scales it less.
    """
    execution_scale = scale if execution_timeout_scale is None else execution_timeout_scale

    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        # One wait on the execution's event, so StopExecution still interrupts it; no re-wait loop
        # (moto's own loop truncates to whole seconds and would wait again for the scaled-away rest).
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * scale)

    def task_timeout(self: Timeout, env: Any) -> None:
        seconds: float = self._eval_seconds(env=env)
        # The default (99999999 s) stands for "no timeout" and stays as it is. A scaled timeout is
        # never shorter than MIN_TASK_TIMEOUT_SECONDS: a task that times out before its Lambda call
        # even started leaves moto's interpreter evaluating it in the background, on state the
        # execution has moved past (corrupting its history), which on AWS a 10 s timeout never meets.
        if not self.is_default_value():
            seconds = max(seconds * scale, min(seconds, MIN_TASK_TIMEOUT_SECONDS))
        env.stack.append(seconds)

    def program_eval(self: Program, env: Any) -> None:
        # Program.eval of the pinned moto, with the execution timeout scaled; and nothing to do for a
        # Parallel branch whose worker starts after its Parallel was stopped or failed (moto raised RuntimeError
        # "Could not set NextState value when in state ProgramStopped" in the thread; on AWS the
        # branch never starts).
        if env.program_state() is not None and not env.is_running():
            return
        timeout = self.timeout_seconds.timeout_seconds * execution_scale if self.timeout_seconds else None
        env.next_state_name = self.start_at.start_at_name
        worker_thread = threading.Thread(target=EvalComponent.eval, args=(self, env), daemon=True)
        TMP_THREADS.append(worker_thread)
        worker_thread.start()
        worker_thread.join(timeout=timeout)
        if worker_thread.is_alive():
            env.set_timed_out()

    with (
        mock.patch.object(WaitFunction, "_wait_interval", wait_interval),
        mock.patch.object(retrier_decl, "time", _ScaledSleep(scale)),
        mock.patch.object(Timeout, "_eval_body", task_timeout),
        mock.patch.object(Program, "eval", program_eval),
    ):
        yield


class FunctionsClock:
    """The clock a stack's Lambda functions read: real time, plus however far a test moved it on.

    Stands in for the ``time`` module inside each function's handler module (where the functions
    read ``time.time()`` and pass ``now`` to the layer); every other name is the real module's, so
    ``sleep`` and ``monotonic`` are untouched. The ASL's waits are scaled, the functions' seconds are
    not: a test that must wait out a lease or a quiet period (``LongestCallSeconds``) moves this
    clock once the execution waiting for it is parked, instead of letting it look again in a loop of
    scaled waits until those real seconds pass. DynamoDB and Step Functions keep the real clock.
    """

    def __init__(self) -> None:
        self._ahead_s = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._ahead_s

    @contextlib.contextmanager
    def moved_on(self, seconds: float) -> Iterator[None]:
        """The functions' clock ``seconds`` ahead while inside; back to real time after (a stack shared
        by several tests must not keep one test's future)."""
        if seconds < 0:
            raise ValueError(f"the functions' clock moves on, not back by {-seconds} s")
        with self._lock:
            self._ahead_s += seconds
        try:
            yield
        finally:
            with self._lock:
                self._ahead_s -= seconds

    @property
    def ahead_s(self) -> float:
        with self._lock:
            return self._ahead_s

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def read_by(self, module: ModuleType) -> None:
        """Make ``module`` (a function's handler module, loaded for one stack) read this clock as ``time``."""
        if getattr(module, "time", None) is time:
            module.time = self  # type: ignore[attr-defined]
