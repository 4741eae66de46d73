"""Express executions as Step Functions gives them: an ``express`` ARN that no execution API answers for.

Step Functions names an Express execution ``arn:aws:states:<region>:<account>:express:<state
machine>:<name>:<id>``, and DescribeExecution, StopExecution and GetExecutionHistory refuse such
an ARN with ``InvalidArn`` ("Invalid Arn: 'Resource type not valid in this context: express'"):
an Express execution's status is in its CloudWatch Logs only, and it cannot be stopped, not even
by the Standard parent that started it with ``startExecution.sync``/``.sync:2`` (Step Functions
itself still follows such a child to its end). moto names it like a Standard execution and
describes, stops and lists its history as if it were one.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from moto.stepfunctions.exceptions import InvalidArn
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.responses import StepFunctionResponse

EXPRESS_RESOURCE = "express"
EXPRESS_INVALID_ARN = f"Invalid Arn: 'Resource type not valid in this context: {EXPRESS_RESOURCE}'"
# The execution APIs that answer for Standard executions only.
_STANDARD_ONLY = (
    "describe_execution",
    "stop_execution",
    "get_execution_history",
    "describe_state_machine_for_execution",
)


def is_express_arn(execution_arn: str) -> bool:
    """Whether an execution ARN is an Express execution's (its resource type is ``express``)."""
    parts = execution_arn.split(":")
    return len(parts) > 5 and parts[5] == EXPRESS_RESOURCE


def express_execution_arn(standard_arn: str) -> str:
    """The ARN Step Functions gives an Express execution moto would have named ``standard_arn``."""
    prefix, _, rest = standard_arn.partition(":execution:")
    return f"{prefix}:{EXPRESS_RESOURCE}:{rest}:{uuid.uuid4()}"


def execution_record(backend: StepFunctionBackend, execution_arn: str) -> Any:
    """moto's own record of an execution, Standard or Express: what Step Functions knows of it
    internally (and an Express execution's CloudWatch Logs would show)."""
    state_machine = backend._get_state_machine_for_execution(execution_arn)
    for execution in state_machine.executions:
        if execution.execution_arn == execution_arn:
            return execution
    return backend.describe_execution(execution_arn)  # raises ExecutionDoesNotExist


def _backend_of(execution_arn: str) -> StepFunctionBackend:
    from moto.stepfunctions.responses import get_backend  # the backend of the configured mode (executing here)

    parts = execution_arn.split(":")
    return get_backend(parts[4], parts[3])


def express_outcome(execution_arn: str) -> dict[str, Any]:
    """An Express execution's outcome as DescribeExecution would give it, read from moto's record
    (where AWS an operator reads it in the execution's CloudWatch Logs)."""
    execution = execution_record(_backend_of(execution_arn), execution_arn)
    described = dict(execution.to_describe_output())
    described["status"] = getattr(described["status"], "value", described["status"])
    return described


def stop_express_execution(execution_arn: str) -> None:
    """End an Express execution still running when the emulator closes (no API can: on AWS it runs to its end)."""
    execution = execution_record(_backend_of(execution_arn), execution_arn)
    with contextlib.suppress(Exception):  # it ended meanwhile
        execution.stop(stop_date=datetime.datetime.now(tz=datetime.UTC), error=None, cause=None)


class _FollowingExpressChildren:
    """The interpreter's Step Functions client: as boto3's, except that it can follow an Express child.

    Step Functions follows a ``.sync`` child internally; only its API refuses to describe an
    Express one. The description is built from moto's record, as DescribeExecution would give it.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def describe_execution(self, executionArn: str) -> Any:  # noqa: N803  (boto3's parameter name)
        if not is_express_arn(executionArn):
            return self._client.describe_execution(executionArn=executionArn)
        return express_outcome(executionArn)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@contextlib.contextmanager
def express_executions_unanswered() -> Iterator[None]:
    """Give Express executions their ``express`` ARN and refuse the Standard-only APIs for them with ``InvalidArn``."""
    original_init = Execution.__init__
    original_validate = StepFunctionBackend._validate_execution_arn
    original_client_for = state_task_service_sfn.__dict__["boto_client_for"]  # imported there, not exported

    def init(self: Execution, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if getattr(self.state_machine, "type", None) == "EXPRESS":  # moto keeps sm_type STANDARD
            self.exec_arn = self.execution_arn = express_execution_arn(self.exec_arn)

    def validate(self: StepFunctionBackend, execution_arn: str) -> None:
        # moto's own lookups (by the backend, for the interpreter) find Express executions too.
        if not is_express_arn(execution_arn):
            original_validate(self, execution_arn)

    def standard_only(name: str) -> Callable[[StepFunctionResponse], Any]:
        original = getattr(StepFunctionResponse, name)

        def answer(self: StepFunctionResponse) -> Any:
            if is_express_arn(self._get_param("executionArn") or ""):
                raise InvalidArn(EXPRESS_INVALID_ARN)
            return original(self)

        return answer

    def client_for(*args: Any, **kwargs: Any) -> Any:
        client = original_client_for(*args, **kwargs)
        return _FollowingExpressChildren(client) if kwargs.get("service") == "stepfunctions" else client

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(Execution, "__init__", init))
        patches.enter_context(mock.patch.object(StepFunctionBackend, "_validate_execution_arn", validate))
        patches.enter_context(mock.patch.object(state_task_service_sfn, "boto_client_for", client_for))
        for name in _STANDARD_ONLY:
            patches.enter_context(mock.patch.object(StepFunctionResponse, name, standard_only(name)))
        yield
