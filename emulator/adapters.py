"""The small adapters moto needs to run this project offline (moto version pinned in requirements-dev.txt).

Each adapter is a context manager that patches one named place in moto and undoes it on exit:

* ``in_process_lambdas``: moto runs Lambda functions in Docker; here the handler is imported
  and called in this process. A handler error comes back as ``{"errorType", "errorMessage"}``
  with the function-error flag set, exactly as Lambda reports it, so Step Functions names the
  error after the exception class and ``Retry``/``Catch`` match it.
* ``atomic_dynamodb_writes``: moto's ``put_item``/``update_item`` read, check the condition and
  write without a lock, so two threads can both pass one condition. One lock around the
  backend's item operations makes each request atomic, as DynamoDB's are.
* ``task_tokens_reach_started_executions``: moto's ``SendTaskSuccess`` looks for the token in every
  RUNNING execution and fails with ``AttributeError`` on one whose worker has not built its
  environment yet (just started); such an execution cannot hold the token, so it is skipped.
* ``stoppable_task_token_waits``: moto's ``.waitForTaskToken`` wait does not notice StopExecution;
  it runs to its timeout and the execution ends FAILED with ``States.Timeout``. On AWS it ends
  ABORTED at once: the wait now checks for a stop while it waits.
* ``scaled_waits``: ASL ``Wait`` states, ``Retry`` intervals and timeouts really take their time;
  this scales them by a factor so tests keep real timings in the ASL and still run fast.
* ``nested_workflows``: the Step Functions integration (``arn:aws:states:::states:startExecution``,
  ``.sync`` and ``.sync:2``) fails as shipped, because moto keeps the interpreter without its
  parameter and response normalisation; this puts the normalisation back, so a state machine
  can start another one and wait for it as on AWS.
* ``sdk_bodies_as_text``: an AWS SDK integration's streaming body (``aws-sdk:s3:getObject``) is
  handed over as moto's stream object, which no state can read; Step Functions gives its text.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

from botocore.response import StreamingBody
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess, CallbackOutcomeTimedOut
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.utils import TMP_THREADS

# The import helper lives in tools/ (tools and scripts use it without the emulator); re-exported
# here because tests and other modules import it from this module.
from tools.layer_import import Handler as Handler
from tools.layer_import import load_handler as load_handler
from tools.layer_import import load_module as load_module

# An interceptor wraps a handler call: interceptor(handler, event, context) -> result.
Interceptor = Callable[[Handler, Any, Any], Any]

# --------------------------------------------------------------------------- Lambda, in process
@dataclass
class LambdaContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"offline/{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InProcessFunction:
    logical_id: str
    handler: Handler
    # The registry of the function's own stack, which counts its calls by its logical id.
    owner: LambdaRegistry
    interceptors: list[Interceptor] = field(default_factory=list)


class LambdaRegistry:
    """The functions of a deployed stack, by function name, and how often each was invoked."""

    def __init__(self, functions: dict[str, InProcessFunction] | None = None) -> None:
        # By function name: the one table every invocation in the process is dispatched from.
        self._functions: dict[str, InProcessFunction] = {} if functions is None else functions
        self._by_logical_id: dict[str, InProcessFunction] = {}
        self._invocations: Counter[str] = Counter()
        self._lock = threading.Lock()

    def nested(self) -> LambdaRegistry:
        """The registry of a nested stack: its functions are invoked through this registry's table
        (one patch of moto serves both stacks), but counted and intercepted by their own stack's
        logical ids, which may repeat the parent's."""
        return LambdaRegistry(self._functions)

    def register(self, function_name: str, logical_id: str, handler: Handler) -> None:
        entry = InProcessFunction(logical_id, handler, owner=self)
        self._functions[function_name] = entry
        self._by_logical_id[logical_id] = entry

    def _count(self, logical_id: str) -> None:
        with self._lock:
            self._invocations[logical_id] += 1

    def invocations(self, logical_id: str) -> int:
        """How many times the function with this template logical id was invoked."""
        with self._lock:
            return self._invocations[logical_id]

    @contextlib.contextmanager
    def intercept(self, logical_id: str, interceptor: Interceptor) -> Iterator[None]:
        """Route calls of one function through ``interceptor`` (to hold, observe or fail them)."""
        entry = self._by_logical_id[logical_id]
        entry.interceptors.append(interceptor)
        try:
            yield
        finally:
            entry.interceptors.remove(interceptor)

    def invoke(self, function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Replacement for ``LambdaFunction._invoke_lambda``: returns ``(payload, errored, logs)``."""
        entry = self._functions.get(function.function_name)
        if entry is None:
            raise RuntimeError(f"Lambda function {function.function_name} is not part of the offline stack")
        entry.owner._count(entry.logical_id)
        if isinstance(event, (str, bytes)):
            event = json.loads(event or "{}")
        context = LambdaContext(
            function_name=function.function_name,
            invoked_function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=int(function.timeout),
        )
        call: Handler = entry.handler
        for interceptor in entry.interceptors:
            call = _wrap(interceptor, call)
        try:
            result = call(event, context)
        except Exception as error:
            # Lambda's stackTrace starts in the handler: drop this adapter's own frame.
            frames = traceback.format_tb(error.__traceback__.tb_next) if error.__traceback__ else []
            return _error_payload(type(error).__name__, str(error), frames), True, ""
        try:
            return json.dumps(result), False, ""
        except (TypeError, ValueError) as error:
            return _error_payload("Runtime.MarshalError", f"Unable to marshal response: {error}", []), True, ""


def _wrap(interceptor: Interceptor, inner: Handler) -> Handler:
    return lambda event, context: interceptor(inner, event, context)


def _error_payload(error_type: str, message: str, frames: list[str]) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": frames})


@contextlib.contextmanager
def in_process_lambdas(registry: LambdaRegistry) -> Iterator[LambdaRegistry]:
    """Run every Lambda invocation of moto through ``registry`` instead of Docker."""

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return registry.invoke(self, event)

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke):
        yield registry


class Gate:
    """An interceptor that holds every call of a function until opened, and tells when the first arrived.

    For tests and benchmarks that need an execution parked inside a step (``LambdaRegistry.intercept``).
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.arrived = threading.Event()
        self._open = threading.Event()
        self._timeout = timeout

    def __call__(self, handler: Handler, event: Any, context: Any) -> Any:
        self.arrived.set()
        if not self._open.wait(timeout=self._timeout):
            raise TimeoutError(f"the gate was not opened within {self._timeout} s")
        return handler(event, context)

    def open(self) -> None:
        self._open.set()


# --------------------------------------------------------------------------- DynamoDB, atomic
_ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items")


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[threading.RLock]:
    """Serialize moto's DynamoDB item operations so each conditional write is atomic."""
    lock = threading.RLock()

    def locked(original: Callable[..., Any]) -> Callable[..., Any]:
        def operation(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return operation

    with contextlib.ExitStack() as patches:
        for name in _ITEM_OPERATIONS:
            patches.enter_context(mock.patch.object(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name))))
        yield lock


# --------------------------------------------------------------------------- task tokens
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


# --------------------------------------------------------------------------- Wait and Retry, scaled
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
        # Program.eval of the pinned moto, with the execution timeout scaled.
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


# --------------------------------------------------------------------------- Step Functions -> Step Functions
# How often a ``.sync`` task looks at its child execution. On AWS the parent learns of the child's
# end from an event within moments; moto polls, every 0.5 s as shipped.
SYNC_POLL_SECONDS = 0.01
# The ASL's names for the StartExecution parameters (PascalCase) are not boto3's (camelCase).
_START_EXECUTION_PARAMETERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name", "TraceHeader": "traceHeader"}
# Values that are the user's data: their keys are kept as they are.
_USER_DATA_KEYS = frozenset({"input", "output"})


def step_functions_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """The ASL's StartExecution parameters as boto3 takes them; a name is generated when none is given.

    Without a name moto would name the child ``None``, and a second such start would fail with
    ``ExecutionAlreadyExists``; Step Functions generates a unique one.
    """
    renamed = {_START_EXECUTION_PARAMETERS.get(name, name): value for name, value in parameters.items()}
    renamed.setdefault("name", uuid.uuid4().hex)
    return renamed


def step_functions_response(response: Any) -> Any:
    """A boto3 Step Functions response as a state sees it on AWS: keys in PascalCase, dates in epoch ms.

    ``Input`` and ``Output`` are the executions' own data and are left untouched.
    """
    if isinstance(response, datetime):
        return int(response.timestamp() * 1000)
    if isinstance(response, list):
        return [step_functions_response(item) for item in response]
    if not isinstance(response, dict):
        return response
    return {
        name[:1].upper() + name[1:]: value if name in _USER_DATA_KEYS else step_functions_response(value)
        for name, value in response.items()
    }


@contextlib.contextmanager
def nested_workflows(poll_seconds: float = SYNC_POLL_SECONDS) -> Iterator[None]:
    """Let a state machine start another one (plain, ``.sync``, ``.sync:2``) as on AWS.

    The interpreter's Step Functions task hands the ASL's parameters to boto3 and reads boto3's
    response without converting either (its normalisation hooks are no-ops in moto). The patch
    converts them where the hooks are called: the parameters before the call, the response of
    StartExecution before the ``.sync`` resolver reads ``ExecutionArn``, and the child's
    DescribeExecution before it becomes the task's result. ``.sync:2`` then gives ``Output`` as
    JSON and ``.sync`` as a string, as on AWS; a failed child fails the task with
    ``States.TaskFailed`` and the child's description as the cause.

    A ``.sync`` task waits for its child only: moto also starts a task-token listener for it (the
    integration supports ``.waitForTaskToken`` too), a thread that outlives the task and, with
    ``stoppable_task_token_waits``, keeps polling until the process ends.
    """
    original_parameters = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(self: StateTaskServiceSfn, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_parameters(self, parameters, *args, **kwargs)  # serializes Input to a string
        converted = step_functions_parameters(parameters)
        parameters.clear()
        parameters.update(converted)

    def normalise_response(self: StateTaskServiceSfn, response: Any, *args: Any, **kwargs: Any) -> None:
        # In place: the interpreter keeps a reference to this dict on its stack.
        if isinstance(response, dict):
            converted = step_functions_response(response)
            response.clear()
            response.update(converted)

    original_eval_sync = StateTaskServiceSfn._eval_sync

    def eval_sync(
        self: StateTaskServiceSfn, env: Any, sync_resolver: Any, timeout_seconds: Any, callback_endpoint: Any, heartbeat_endpoint: Any
    ) -> Any:
        return original_eval_sync(self, env, sync_resolver, timeout_seconds, None, heartbeat_endpoint)

    with (
        mock.patch.object(StateTaskServiceSfn, "_eval_sync", eval_sync),
        mock.patch.object(StateTaskServiceSfn, "_normalise_parameters", normalise_parameters),
        mock.patch.object(StateTaskServiceSfn, "_normalise_response", normalise_response),
        mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", poll_seconds),
    ):
        yield


# --------------------------------------------------------------------------- AWS SDK integrations, bodies as text
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
