"""Lambda functions run in this process instead of Docker."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

from moto.awslambda.models import LambdaFunction

# The import helper lives in tools/ (tools and scripts use it without the emulator).
from tools.layer_import import Handler as Handler
from tools.layer_import import load_handler as load_handler
from tools.layer_import import load_module as load_module
from tools.template import PROJECT_ROOT

# An interceptor wraps a handler call: interceptor(handler, event, context) -> result.
Interceptor = Callable[[Handler, Any, Any], Any]


class InvokedFunction(Protocol):
    """What ``LambdaRegistry.invoke`` reads of the function moto invokes (its ``LambdaFunction``)."""

    function_name: str
    function_arn: str
    memory_size: int
    timeout: int


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

    def invoke(self, function: InvokedFunction, event: Any) -> tuple[str, bool, str]:
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
            frames = traceback.extract_tb(error.__traceback__.tb_next) if error.__traceback__ else []
            return (
                _error_payload(type(error).__name__, str(error), context.aws_request_id, stack_trace(frames)),
                True,
                "",
            )
        try:
            return json.dumps(result), False, ""
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            return _error_payload("Runtime.MarshalError", message, context.aws_request_id, []), True, ""


def _wrap(interceptor: Interceptor, inner: Handler) -> Handler:
    return lambda event, context: interceptor(inner, event, context)


def _error_payload(error_type: str, message: str, request_id: str, stack: list[str]) -> str:
    # The Python runtime's error document, keys in its order; Step Functions shows it as the Cause.
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack})


def stack_trace(frames: traceback.StackSummary | list[traceback.FrameSummary]) -> list[str]:
    """A traceback as the Python runtime reports it (``stackTrace``): one string per frame.

    Paths are relative, as in Lambda, where code sits under ``/var/task`` (or ``/opt/python`` for a
    layer): a library's file relative to its ``site-packages``, a file of this project relative to
    its root, anything else by its name alone. No path of this machine appears.
    """
    summary = traceback.StackSummary.from_list(
        [(_relative_path(frame.filename), frame.lineno or 0, frame.name, frame.line) for frame in frames]
    )
    return summary.format()


def _relative_path(filename: str) -> str:
    path = Path(filename)
    if not path.is_absolute():
        return filename
    for root in (*_library_roots(), PROJECT_ROOT):  # libraries first: a virtualenv may sit in the project
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    return path.name


def _library_roots() -> list[Path]:
    return [Path(entry) for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]


@contextlib.contextmanager
def in_process_lambdas(registry: LambdaRegistry) -> Iterator[LambdaRegistry]:
    """Run every Lambda invocation of moto through ``registry`` instead of Docker."""

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return registry.invoke(self, event)

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke):
        yield registry


@contextlib.contextmanager
def metrics_per_function() -> Iterator[None]:
    """Each Powertools ``Metrics`` made while open keeps its metrics and dimensions to itself.

    Powertools keeps them in class-level dicts, shared by every ``Metrics`` of a process: on Lambda
    a process runs one function, but here every function of every stack shares this one, so one
    function's flush printed (or cleared) another's metrics and dimensions. Each function's module
    makes its ``Metrics`` when loaded, so each gets its own state, as in a process of its own. (Two
    invocations of one function at once still share it, which separate execution environments
    would not: no test counts metrics of concurrent invocations.)
    """
    from aws_lambda_powertools import Metrics

    original = Metrics.__init__

    def with_its_own_state(self: Any, *args: Any, **kwargs: Any) -> None:
        # Instance attributes shadow the class's shared dicts, which __init__ reads.
        self._metrics, self._dimensions, self._metadata, self._default_dimensions = {}, {}, {}, {}
        original(self, *args, **kwargs)

    with mock.patch.object(Metrics, "__init__", with_its_own_state):
        yield


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
