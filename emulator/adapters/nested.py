"""Step Functions starting Step Functions (plain, ``.sync``, ``.sync:2``) as on AWS."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

# How often a ``.sync`` task looks at its child execution. On AWS the parent learns of the child's
# end from an event within moments; moto polls, every 0.5 s as shipped.
SYNC_POLL_SECONDS = 0.01
# The ASL's names for the StartExecution parameters (PascalCase) are not boto3's (camelCase).
_START_EXECUTION_PARAMETERS = {
    "StateMachineArn": "stateMachineArn",
    "Input": "input",
    "Name": "name",
    "TraceHeader": "traceHeader",
}
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
        self: StateTaskServiceSfn,
        env: Any,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        return original_eval_sync(self, env, sync_resolver, timeout_seconds, None, heartbeat_endpoint)

    with (
        mock.patch.object(StateTaskServiceSfn, "_eval_sync", eval_sync),
        mock.patch.object(StateTaskServiceSfn, "_normalise_parameters", normalise_parameters),
        mock.patch.object(StateTaskServiceSfn, "_normalise_response", normalise_response),
        mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", poll_seconds),
    ):
        yield


# --------------------------------------------------------------------------- a .sync child ends with its task
# The Step Functions developer guide: for the "Run a Job (.sync)" pattern, when the Task state is
# stopped (the execution is stopped, times out, or the task itself times out) Step Functions makes
# a best-effort attempt to stop the job it started ("Service integration patterns", Run a Job);
# for a nested workflow that job is the child execution, which is why the IAM policy Step
# Functions documents for `states:startExecution.sync` ("IAM policies for calling nested Step
# Functions workflows") grants `states:StopExecution` besides StartExecution/DescribeExecution.
_SYNC_CHILD = "_emulator_sync_child"


@contextlib.contextmanager
def sync_children_stop_with_their_task() -> Iterator[None]:
    """Stop a ``.sync``/``.sync:2`` child execution when its parent's task ends before the child does.

    moto's task stops polling the child once its frame is no longer running (the parent was
    stopped or timed out, or the task's own ``TimeoutSeconds`` passed, or a sibling branch
    failed), and leaves the child running. Step Functions stops it with StopExecution; so does
    this, through the API, so the child ends as any stopped execution does (its status-change
    event follows; with ``immediate_stops`` its in-flight calls run on by themselves).
    """
    originals = {name: getattr(StateTaskServiceSfn, name) for name in ("_build_sync_resolver", "_build_sync2_resolver")}

    def remembering(name: str) -> Callable[..., Any]:
        def build(
            self: StateTaskServiceSfn,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: Any,
            state_credentials: Any,
        ) -> Any:
            child_arn = env.stack[-1]["ExecutionArn"]  # the StartExecution response, which the builder pops
            client = boto_client_for(
                service="stepfunctions", region=resource_runtime_part.region, state_credentials=state_credentials
            )
            env.__dict__[_SYNC_CHILD] = (client, child_arn)
            return originals[name](self, env, resource_runtime_part, normalised_parameters, state_credentials)

        return build

    current_eval_sync = StateTaskServiceSfn._eval_sync

    def eval_sync(self: StateTaskServiceSfn, env: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = current_eval_sync(self, env, *args, **kwargs)
        child = env.__dict__.pop(_SYNC_CHILD, None)
        if not outcome and child is not None and not env.is_running():
            client, child_arn = child
            with contextlib.suppress(ClientError):  # it ended in the meantime
                client.stop_execution(executionArn=child_arn)
        return outcome

    with (
        mock.patch.object(StateTaskServiceSfn, "_build_sync_resolver", remembering("_build_sync_resolver")),
        mock.patch.object(StateTaskServiceSfn, "_build_sync2_resolver", remembering("_build_sync2_resolver")),
        mock.patch.object(StateTaskServiceSfn, "_eval_sync", eval_sync),
    ):
        yield
