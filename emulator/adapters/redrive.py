"""RedriveExecution as Step Functions documents it (moto pinned in requirements-dev.txt does not have it).

What AWS documents ("Redriving executions", the RedriveExecution and DescribeExecution references,
"Step Functions Execution Status Change" events), and how each point is modelled here:

* A Standard execution that ended FAILED, ABORTED or TIMED_OUT less than ``REDRIVE_PERIOD`` ago
  (on the adapter's clock) can be redriven; a RUNNING or SUCCEEDED one, an Express one, or one
  past the period cannot: ``ExecutionNotRedrivable``.
* The redrive continues **the same execution** (same ARN, definition and input) from its
  unsuccessful state: a state that exited successfully (its ``...StateExited`` event) in an
  earlier attempt is not run again; its output and its choice of next state are kept. Each state
  is known by its position: the states around it (a Parallel's branch index, an inline Map's
  iteration index) and how many times the execution had entered it there. So a Parallel or an
  inline Map that did not exit reruns, and inside it the branches or iterations that had
  finished give their kept results without running a state, while the failed or aborted ones
  continue from their unsuccessful state.
* ``$$.Execution.RedriveCount`` (0 before any redrive) and, once redriven, ``$$.Execution.RedriveTime``.
* ``DescribeExecution`` gives ``redriveCount``, ``redriveDate`` (once redriven), ``redriveStatus``
  and ``redriveStatusReason``.
* The execution is ``PENDING_REDRIVE`` from the call until its program runs again, then
  ``RUNNING``; that change publishes a "Step Functions Execution Status Change" event with
  ``status`` RUNNING and ``redriveCount`` (through ``events.execution_status_events``, which also
  adds ``redriveCount`` to the events of each end). The history goes on: an ``ExecutionRedriven``
  event, then the events of this attempt, after those of the earlier ones.
* The execution's ``TimeoutSeconds`` counts from the redrive (the program is evaluated afresh).

Not modelled: ``clientToken`` (each call redrives), the 24,999-event and one-year limits,
Distributed Map runs, and JSONPath/JSONata variables (a kept state's ``Assign`` is not replayed:
the envelope's ASL assigns none).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import IterationWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import BranchWorker
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import BranchesDecl
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.state_continue_with import ContinueWithNext
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.responses import StepFunctionResponse

# How long after its end an execution can be redriven ("Redrive eligibility").
REDRIVE_PERIOD = datetime.timedelta(days=14)
REDRIVABLE_STATUSES = ("FAILED", "ABORTED", "TIMED_OUT")
EXPRESS = "EXPRESS"
# redriveStatus values of DescribeExecution.
REDRIVABLE = "REDRIVABLE"
NOT_REDRIVABLE = "NOT_REDRIVABLE"

Clock = Callable[[], datetime.datetime]
# Where a state sits in an execution: (state name, entry number) under the states around it, with
# ("branch", i) or ("iteration", i) for a Parallel's branch or an inline Map's iteration.
Position = tuple[Any, ...]
# A state that exited: its output and the state it chose next (None: it ended its program).
Exit = tuple[Any, str | None]

_ATTEMPTS = "_emulator_redrive_attempts"  # on moto's Execution
_ATTEMPT = "_emulator_redrive_attempt"  # on a worker running a redrive
_JOURNAL = "_emulator_redrive_journal"  # on an environment (and its frames)
_SCOPE = "_emulator_redrive_scope"  # the position of the states an environment runs
_CURRENT = "_emulator_redrive_current"  # the position of the state an environment is in
_ENTRIES = "_emulator_redrive_entries"  # how often an environment entered each state
_BRANCH = "_emulator_redrive_branch"  # a Parallel branch's index, on its program
_EXIT = "_emulator_redrive_exit"  # on an environment: the exit of the state it is in, once it exits


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


@dataclass
class Attempts:
    """What an execution keeps from one attempt to the next: the states that exited, and its history."""

    exits: dict[Position, Exit] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    redrive_count: int = 0
    redrive_date: datetime.datetime | None = None
    history: list[Any] = field(default_factory=list)

    def kept(self, position: Position) -> Exit | None:
        with self.lock:
            return self.exits.get(position)

    def exited(self, position: Position, output: Any, next_state: str | None) -> None:
        with self.lock:
            self.exits[position] = (output, next_state)


def attempts_of(execution: Any) -> Attempts:
    """The attempts of one of moto's executions (created on first use)."""
    attempts: Attempts = execution.__dict__.setdefault(_ATTEMPTS, Attempts())
    return attempts


def is_express(execution: Any) -> bool:
    """Whether an execution belongs to an Express state machine (moto keeps ``sm_type`` STANDARD)."""
    return getattr(execution.state_machine, "type", None) == EXPRESS


def redrive_status(execution: Any, now: datetime.datetime) -> tuple[str, str | None]:
    """``redriveStatus`` and ``redriveStatusReason`` of an execution at ``now``."""
    status = getattr(execution.exec_status, "value", execution.exec_status)
    if is_express(execution):
        return NOT_REDRIVABLE, "Express executions cannot be redriven"
    if status not in REDRIVABLE_STATUSES:
        return NOT_REDRIVABLE, f"Execution is {status} and cannot be redriven"
    if execution.stop_date is not None and now - execution.stop_date > REDRIVE_PERIOD:
        return NOT_REDRIVABLE, f"Execution ended more than {REDRIVE_PERIOD.days} days ago and cannot be redriven"
    return REDRIVABLE, None


def _execution_of(worker: ExecutionWorker) -> Any:
    """moto's execution a worker runs (its link to it, ``BaseExecutionWorkerCommunication``, holds it)."""
    return worker._execution_communication.execution  # type: ignore[attr-defined]


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


@contextlib.contextmanager
def redrivable_executions(clock: Clock = _now, on_redrive: Callable[[Any], None] | None = None) -> Iterator[None]:
    """Add ``RedriveExecution`` to moto's Step Functions, with redrive fields in ``DescribeExecution``.

    ``clock`` says when it is (the 14-day period is measured on it). ``on_redrive`` is called with
    moto's execution once a redrive makes it RUNNING again (the status-change event's publisher).
    """
    original_state_body = CommonStateField._eval_body
    original_open_inner_frame = Environment.open_inner_frame
    original_open_frame = Environment.open_frame
    original_branches_init = BranchesDecl.__init__
    original_branch_worker_init = BranchWorker.__init__
    original_eval_job = IterationWorker._eval_job
    original_environment = ExecutionWorker._get_evaluation_environment
    original_logic = ExecutionWorker._execution_logic
    original_describe = StepFunctionResponse.describe_execution

    # ---------------------------------------------------------------- positions and kept exits
    def state_body(self: CommonStateField, env: Environment) -> None:
        attempts: Attempts | None = env.__dict__.get(_JOURNAL)
        if attempts is None:  # an environment this adapter did not build (a test-state call)
            original_state_body(self, env)
            return
        entries: Counter[str] = env.__dict__.setdefault(_ENTRIES, Counter())
        entries[self.name] += 1
        position = (*env.__dict__.get(_SCOPE, ()), self.name, entries[self.name])
        env.__dict__[_CURRENT] = position
        kept = attempts.kept(position)
        if kept is not None:  # exited in an earlier attempt: its result is kept, it is not rerun
            output, next_state = kept
            env.states.reset(input_value=output)
            if next_state is None:
                env.set_ended()
            else:
                env.next_state_name = next_state
            return
        env.__dict__.pop(_EXIT, None)
        original_state_body(self, env)
        exit_ = env.__dict__.pop(_EXIT, None)
        if exit_ is not None:
            attempts.exited(position, *exit_)

    def exiting(original: Callable[[Any, Environment], None]) -> Callable[[Any, Environment], None]:
        def set_next(self: CommonStateField, env: Environment) -> None:
            # Called once the state's output is final, while its execution still runs; what the
            # state chose next is read first, since an end (or a stop) makes next_state_name None.
            next_state = env.next_state_name
            if next_state is not None:  # None: no longer running, the state does not exit
                if next_state == self.name:  # not chosen by a Choice rule or a Catch: the state's own
                    next_state = (
                        self.continue_with.next_state.name if isinstance(self.continue_with, ContinueWithNext) else None
                    )
                env.__dict__[_EXIT] = (env.states.get_input(), next_state)
            original(self, env)

        return set_next

    def inherit(parent: Environment, frame: Environment) -> Environment:
        if _JOURNAL in parent.__dict__:
            frame.__dict__[_JOURNAL] = parent.__dict__[_JOURNAL]
            frame.__dict__[_SCOPE] = parent.__dict__.get(_CURRENT) or parent.__dict__.get(_SCOPE, ())
        return frame

    def open_inner_frame(self: Environment, *args: Any, **kwargs: Any) -> Environment:
        return inherit(self, original_open_inner_frame(self, *args, **kwargs))

    def open_frame(self: Environment, *args: Any, **kwargs: Any) -> Environment:
        return inherit(self, original_open_frame(self, *args, **kwargs))

    def branches_init(self: BranchesDecl, programs: list[Any]) -> None:
        original_branches_init(self, programs)
        for index, program in enumerate(programs):
            program.__dict__[_BRANCH] = index

    def branch_worker_init(self: BranchWorker, branch_worker_comm: Any, program: Any, env: Environment) -> None:
        original_branch_worker_init(self, branch_worker_comm, program, env)
        if _JOURNAL in env.__dict__:
            env.__dict__[_SCOPE] = (*env.__dict__[_SCOPE], "branch", program.__dict__.get(_BRANCH))

    def eval_job(self: IterationWorker, env: Environment, job: Any) -> None:
        if _JOURNAL in env.__dict__:
            env.__dict__[_SCOPE] = (*env.__dict__[_SCOPE], "iteration", job.job_index)
        original_eval_job(self, env, job)

    # ---------------------------------------------------------------- the execution's attempts
    def evaluation_environment(self: ExecutionWorker) -> Environment:
        env = original_environment(self)
        attempts = attempts_of(_execution_of(self))
        env.__dict__[_JOURNAL] = attempts
        context = env.states.context_object.context_object_data["Execution"]
        context["RedriveCount"] = attempts.redrive_count  # type: ignore[typeddict-unknown-key]
        if attempts.redrive_date is not None:
            context["RedriveTime"] = attempts.redrive_date.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # type: ignore[typeddict-unknown-key]
        return env

    def execution_logic(self: ExecutionWorker) -> None:
        attempts: Attempts | None = self.__dict__.get(_ATTEMPT)
        if attempts is None:
            original_logic(self)  # type: ignore[no-untyped-call]
            return
        # ExecutionWorker._execution_logic of the pinned moto, continuing the earlier attempts' history.
        program = self._get_evaluation_entrypoint()
        self.env = env = self._get_evaluation_environment()
        manager = env.event_manager
        manager._history_event_list.extend(attempts.history)
        manager._event_id_gen._next_id = len(attempts.history) + 1
        env.event_history_context.source_event_id = len(attempts.history)
        env.event_history_context.last_published_event_id = len(attempts.history)
        execution = _execution_of(self)
        execution.exec_status = ExecutionStatus.RUNNING
        manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            # moto's EventDetails predates this event: the key is the one botocore reads.
            event_details={
                "executionRedrivenEventDetails": ExecutionRedrivenEventDetails(redriveCount=attempts.redrive_count)
            },  # type: ignore[arg-type]
        )
        if on_redrive is not None:
            on_redrive(execution)
        program.eval(env)
        self._execution_communication.terminated()

    # ---------------------------------------------------------------- the API
    def redrive(backend: Any, execution_arn: str) -> datetime.datetime:
        execution: Any = backend.describe_execution(execution_arn)
        now = clock()
        status, reason = redrive_status(execution, now)
        if status != REDRIVABLE:
            raise ExecutionNotRedrivable(f"Execution '{execution_arn}' cannot be redriven: {reason}")
        attempts = attempts_of(execution)
        worker = execution.exec_worker
        attempts.history = list(worker.env.event_manager.get_event_history()) if worker and worker.env else []
        attempts.redrive_count += 1
        attempts.redrive_date = now
        execution.exec_status = ExecutionStatus.PENDING_REDRIVE
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None
        redriven = execution._get_start_execution_worker()
        redriven.__dict__[_ATTEMPT] = attempts
        execution.exec_worker = redriven
        redriven.start()
        return now

    def redrive_execution(self: StepFunctionResponse) -> ActionResult:
        redrive_date = redrive(self.stepfunction_backend, self._get_param("executionArn"))
        return ActionResult({"redriveDate": redrive_date})

    def describe_execution(self: StepFunctionResponse) -> ActionResult:
        result = original_describe(self)
        execution: Any = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        attempts = attempts_of(execution)
        status, reason = redrive_status(execution, clock())
        described: dict[str, Any] = result.result  # type: ignore[assignment]
        described.update(redriveCount=attempts.redrive_count, redriveStatus=status)
        if attempts.redrive_date is not None:
            described["redriveDate"] = attempts.redrive_date
        if reason is not None:
            described["redriveStatusReason"] = reason
        return result

    with (
        mock.patch.object(CommonStateField, "_eval_body", state_body),
        mock.patch.object(CommonStateField, "_set_next", exiting(CommonStateField._set_next)),
        mock.patch.object(StateChoice, "_set_next", exiting(StateChoice._set_next)),
        mock.patch.object(Environment, "open_inner_frame", open_inner_frame),
        mock.patch.object(Environment, "open_frame", open_frame),
        mock.patch.object(BranchesDecl, "__init__", branches_init),
        mock.patch.object(BranchWorker, "__init__", branch_worker_init),
        mock.patch.object(IterationWorker, "_eval_job", eval_job),
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", evaluation_environment),
        mock.patch.object(ExecutionWorker, "_execution_logic", execution_logic),
        mock.patch.object(StepFunctionResponse, "redrive_execution", redrive_execution, create=True),
        mock.patch.object(StepFunctionResponse, "describe_execution", describe_execution),
    ):
        yield
