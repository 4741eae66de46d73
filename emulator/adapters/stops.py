"""StopExecution as on AWS: the execution ends at once, while a call already running runs on."""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.api import (
    ExecutionAbortedEventDetails,
    ExecutionStatus,
    ExecutionTimedOutEventDetails,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.component.common.timeouts.heartbeat import Heartbeat
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout, TimeoutSeconds
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import (
    ProgramEnded,
    ProgramError,
    ProgramStopped,
)
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker


class _TerminatedOnce:
    """The worker's link to its execution, reporting the end once: at the stop, or when the program ends."""

    def __init__(self, communication: Any) -> None:
        self._communication = communication
        self._lock = threading.Lock()
        self._done = False

    def terminated(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._communication.terminated()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._communication, name)


_STOPS = "_emulator_stops"
_PENDING_STOP = "_emulator_pending_stop"
_CLOSED = "_emulator_history_closed"


@dataclass
class _Stops:
    """What a worker's stop needs: its environment once built, or the stop to apply when it is."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    env: Any = None
    pending: dict[str, Any] | None = None


@contextlib.contextmanager
def immediate_stops() -> Iterator[None]:
    """End a stopped execution at once: ABORTED, ``stopDate`` set and its status change published.

    moto marks the program stopped, but the execution only ends (status, stop date, the
    "Step Functions Execution Status Change" event) when its worker thread notices, which is
    after the Lambda call it is in returns: a stop looks as slow as the slowest step. On AWS
    StopExecution ends the execution at once and a Lambda invocation already running is not
    cancelled: it runs to its end on its own, and what it returns is ignored. Here the stop
    reports the end from StopExecution itself, and the history ends there with
    ``ExecutionAborted``; the worker thread keeps running the call, and what it would still
    report or record afterwards is dropped.

    A stop that arrives before the worker has built its environment (just started) is kept and
    applied as the program starts; moto as pinned fails it with ``AttributeError``
    ('NoneType' object has no attribute 'set_stop'), a 500 to the caller. The execution is
    ABORTED at once there too; the program then ends without running a state.

    An execution timeout already ends the execution at once (the interpreter's ``Program.eval``
    stops waiting for its worker at the timeout, see ``scaled_waits``); here its history ends at
    once with ``ExecutionTimedOut`` too.
    """
    original_init = ExecutionWorker.__init__
    original_add_event = EventManager.add_event
    original_environment = ExecutionWorker._get_evaluation_environment

    def init(self: ExecutionWorker, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._execution_communication = _TerminatedOnce(self._execution_communication)  # type: ignore[misc, assignment]
        self.__dict__[_STOPS] = _Stops()

    def evaluation_environment(self: ExecutionWorker) -> Any:
        env = original_environment(self)
        stops: _Stops = self.__dict__[_STOPS]
        with stops.lock:
            stops.env = env
            # Applied as the program starts, so its history still records the start and the abort.
            env.__dict__[_PENDING_STOP] = stops.pending
        return env

    original_program = Program._eval_body

    def program_body(self: Program, env: Any) -> None:
        pending = env.__dict__.pop(_PENDING_STOP, None)
        if pending is not None:
            env.set_stop(**pending)
        original_program(self, env)

    def stop(self: ExecutionWorker, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        communication: Any = self._execution_communication
        stops: _Stops = self.__dict__[_STOPS]
        with stops.lock:
            env = stops.env
            if env is None:
                stops.pending = {"stop_date": stop_date, "error": error, "cause": cause}
        if env is None:
            communication.execution.exec_status = ExecutionStatus.ABORTED
            communication.execution.stop_date = stop_date
            return
        env.set_stop(stop_date=stop_date, cause=cause, error=error)
        if isinstance(env._program_state, ProgramStopped):  # read directly: program_state() deep-copies
            env.event_history_context.source_event_id = 0  # as moto's own ExecutionAborted event
            details = ExecutionAbortedEventDetails(error=error, cause=cause)
            _close_history(env, HistoryEventType.ExecutionAborted, {"executionAbortedEventDetails": details})
            communication.terminated()

    original_timed_out = Environment.set_timed_out

    def set_timed_out(self: Environment) -> None:
        original_timed_out(self)
        if not self.is_frame():
            details = ExecutionTimedOutEventDetails()
            _close_history(self, HistoryEventType.ExecutionTimedOut, {"executionTimedOutEventDetails": details})

    def add_event(self: EventManager, *args: Any, **kwargs: Any) -> int:
        if self.__dict__.get(_CLOSED):
            return -1  # the execution has ended: no event follows its last
        return original_add_event(self, *args, **kwargs)

    def _close_history(env: Any, event_type: HistoryEventType, details: Any) -> None:
        manager = env.event_manager
        if manager.__dict__.get(_CLOSED):
            return
        manager.__dict__[_CLOSED] = True  # first: an event the worker adds meanwhile is dropped
        original_add_event(manager, context=env.event_history_context, event_type=event_type, event_details=details)

    with (
        mock.patch.object(ExecutionWorker, "__init__", init),
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", evaluation_environment),
        mock.patch.object(ExecutionWorker, "stop", stop),
        mock.patch.object(Program, "_eval_body", program_body),
        mock.patch.object(Environment, "set_timed_out", set_timed_out),
        mock.patch.object(EventManager, "add_event", add_event),
    ):
        yield


@contextlib.contextmanager
def timeouts_evaluated_once_stopped() -> Iterator[None]:
    """Let a task's ``TimeoutSeconds``/``HeartbeatSeconds`` give a number even after its execution stopped.

    moto skips ("prunes") every evaluation once its environment is not running, but a task
    evaluates its timeout and then pops it from the shared stack unconditionally. A stop (or the
    task's own timeout, which ends the task's frame) that lands between the two makes the task pop
    whatever lies below: its parameters (a dict, which ``TaskScheduled.timeoutInSeconds`` then
    holds, so GetExecutionHistory fails to serialize: ``int() argument must be ... not 'dict'``),
    or nothing (``IndexError``). Here the value is always evaluated and pushed; the task then
    ends as a stopped task does.
    """
    originals = {component: component.eval for component in (Timeout, Heartbeat)}

    def evaluating(component: type[Timeout] | type[Heartbeat]) -> Any:
        def evaluate(self: Any, env: Any) -> None:
            if env.is_running():
                originals[component](self, env)
                return
            depth = len(env.stack)
            try:
                self._eval_body(env)
            except Exception:  # the state's input may no longer hold a TimeoutSecondsPath's value
                del env.stack[depth:]
                env.stack.append(TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS)

        return evaluate

    with (
        mock.patch.object(Timeout, "eval", evaluating(Timeout)),
        mock.patch.object(Heartbeat, "eval", evaluating(Heartbeat)),
    ):
        yield


@contextlib.contextmanager
def outcome_before_status() -> Iterator[None]:
    """An ended execution's output (or error and cause) is in place before its status says it ended.

    moto's ``_reflect_execution_status`` sets ``SUCCEEDED`` first and the output after it: a
    DescribeExecution in between answers SUCCEEDED with no output (a test saw it on a busy machine),
    which Step Functions never does. Here the stop date and the outcome are written first, the
    status last.
    """
    original = BaseExecutionWorkerCommunication._reflect_execution_status

    def reflect_execution_status(self: BaseExecutionWorkerCommunication) -> None:
        execution: Any = self.execution
        env: Any = execution.exec_worker.env
        ended = env.program_state()
        if isinstance(ended, ProgramEnded):
            execution.stop_date = datetime.datetime.now(tz=datetime.UTC)
            execution.output = env.states.get_input()
            execution.exec_status = ExecutionStatus.SUCCEEDED
        elif isinstance(ended, ProgramError):
            failure: Any = ended.error or {}
            execution.stop_date = datetime.datetime.now(tz=datetime.UTC)
            execution.error, execution.cause = failure.get("error"), failure.get("cause")
            execution.exec_status = ExecutionStatus.FAILED
        else:
            original(self)  # type: ignore[no-untyped-call]  # ABORTED, TIMED_OUT: only the status and stop date

    with mock.patch.object(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect_execution_status):
        yield
