"""The small adapters moto needs to run this project offline (moto version pinned in requirements-dev.txt).

Each adapter is a context manager that patches one named place in moto and undoes it on exit:

* ``in_process_lambdas``: moto runs Lambda functions in Docker; here the handler is imported
  and called in this process. A handler error comes back as the Python runtime's document
  (``{"errorMessage", "errorType", "requestId", "stackTrace"}``, paths relative as under
  ``/var/task``) with the function-error flag set, so Step Functions names the error after the
  exception class, ``Retry``/``Catch`` match it, and the Cause is the text AWS would show.
* ``metrics_per_function``: Powertools keeps metrics and dimensions in class-level dicts that every
  ``Metrics`` of a process shares; on Lambda a process runs one function, here all of them do, so
  each ``Metrics`` made while a stack is deployed gets its own, as in a process of its own.
* ``atomic_dynamodb_writes``: moto's ``put_item``/``update_item`` read, check the condition and
  write without a lock, so two threads can both pass one condition. One lock around the
  backend's item operations makes each request atomic, as DynamoDB's are.
* ``dynamodb_item_size_limit``: moto counts an item's size by rules of its own, not after a
  nested-path update, and keeps half of a refused update; here every write (put, update, batch,
  transaction) is held to DynamoDB's 400 KB counted as DynamoDB counts
  (``emulator.dynamodb_size``), and a refused write changes nothing.
* ``task_tokens_reach_started_executions``: moto's ``SendTaskSuccess`` looks for the token in every
  RUNNING execution and fails with ``AttributeError`` on one whose worker has not built its
  environment yet (just started); such an execution cannot hold the token, so it is skipped.
* ``realistic_task_tokens``: moto's ``$$.Task.Token`` is a 36-character UUID; AWS's are long
  opaque strings (up to 2,048 characters accepted). Tokens here are 1,024 base64 characters by
  default (``OfflineStack(task_token_length=...)``), so whatever stores them is measured at size.
* ``stoppable_task_token_waits``: moto's ``.waitForTaskToken`` wait does not notice StopExecution;
  it runs to its timeout and the execution ends FAILED with ``States.Timeout``. On AWS it ends
  ABORTED at once: the wait now checks for a stop while it waits.
* ``immediate_stops``: moto ends a stopped execution (status, stop date, status-change event)
  only once the Lambda call it is in returns, and fails a stop that comes just after the start;
  on AWS the execution ends at once and the call runs on by itself, its result ignored.
* ``outcome_before_status``: moto sets an ended execution's status before its output, so a
  DescribeExecution in between answers SUCCEEDED without output; here the status is written last.
* ``timeouts_evaluated_once_stopped``: a stop landing between a task's timeout evaluation (skipped
  once stopped) and its pop left a dict in ``TaskScheduled.timeoutInSeconds`` (GetExecutionHistory
  then fails) or an ``IndexError``; the timeout is now always a number.
* ``scaled_waits``: ASL ``Wait`` states, ``Retry`` intervals and timeouts really take their time;
  this scales them by a factor so tests keep real timings in the ASL and still run fast.
  ``FunctionsClock`` is the clock the functions read (real, unless a test moves it on).
* ``step_functions_payload_limit``: moto counts Step Functions' 256 KiB in escaped JSON (six
  bytes per Cyrillic letter), checks only results and outputs, and lets ``Catch`` handle
  ``States.DataLimitExceeded``; here the count is UTF-8 bytes, inputs (execution, state, task
  parameters) and ``SendTaskSuccess`` outputs are checked too, and the error is terminal.
* ``nested_workflows``: the Step Functions integration (``arn:aws:states:::states:startExecution``,
  ``.sync`` and ``.sync:2``) fails as shipped, because moto keeps the interpreter without its
  parameter and response normalisation; this puts the normalisation back, so a state machine
  can start another one and wait for it as on AWS.
* ``sync_children_stop_with_their_task``: moto leaves a ``.sync`` child running when its
  parent's task ends first (parent stopped or timed out, task timed out); Step Functions stops
  the child, so this does too.
* ``aws_context_timestamps``: ``$$.Execution.StartTime`` and ``$$.State.EnteredTime`` in AWS's
  format (milliseconds and ``Z``), not Python's ``isoformat()``.
* ``redrivable_executions``: moto has no ``RedriveExecution``; this adds it as Step Functions
  documents it (same ARN and input, from the unsuccessful state, succeeded states and finished
  branches or iterations kept, ``RedriveCount``/``RedriveTime``, ``PENDING_REDRIVE``, the
  redrive fields of DescribeExecution, ``ExecutionNotRedrivable``).
* ``express_executions_unanswered``: moto names an Express execution like a Standard one and
  describes and stops it; Step Functions gives it an ``express`` ARN that DescribeExecution,
  StopExecution and GetExecutionHistory refuse (``InvalidArn``), while a ``.sync`` parent is still
  told when its Express child ends.
* ``metric_alarms_checked``: moto stores any alarm PutMetricAlarm is given; CloudWatch refuses
  metric math naming a query that does not exist, more or fewer than one returned series, an
  alarm on one metric without its statistic, and the like. So does this, so an alarm a template
  could never create on AWS fails its deployment offline too.
* ``sdk_bodies_as_text``: an AWS SDK integration's streaming body (``aws-sdk:s3:getObject``) is
  handed over as moto's stream object, which no state can read; Step Functions gives its text.
* ``sdk_step_functions_calls``: ``aws-sdk:sfn:<action>`` (``describeExecution``, ``redriveExecution``)
  fails as shipped: the ASL's PascalCase parameters reach Step Functions' camelCase API, and the
  state gets a camelCase response; here each gets the names it has on AWS.

Four more change no answer, only the CPU time the suite spends (``emulator.adapters.speed``):
``shared_service_models`` (botocore's JSON models parsed once per process, not per session),
``task_clients_reused`` (one client per service for moto's tasks, not one per task),
``parsed_json_paths`` (each JSONPath parsed once) and ``parsed_definitions`` (each definition
lexed and parsed once, fresh components per execution); ``work_done_once`` enters all four.
"""

from emulator.adapters.cloudwatch import alarm_refusal, metric_alarms_checked
from emulator.adapters.dynamodb import atomic_dynamodb_writes, dynamodb_item_size_limit
from emulator.adapters.express import (
    EXPRESS_INVALID_ARN,
    express_executions_unanswered,
    express_outcome,
    is_express_arn,
    stop_express_execution,
)
from emulator.adapters.formats import aws_context_timestamps, aws_timestamp
from emulator.adapters.lambdas import (
    Gate,
    Handler,
    InProcessFunction,
    Interceptor,
    LambdaContext,
    LambdaRegistry,
    in_process_lambdas,
    load_handler,
    load_module,
    metrics_per_function,
    stack_trace,
)
from emulator.adapters.limits import MAX_PAYLOAD_BYTES, payload_size_bytes, step_functions_payload_limit
from emulator.adapters.nested import (
    SYNC_POLL_SECONDS,
    nested_workflows,
    step_functions_parameters,
    step_functions_response,
    sync_children_stop_with_their_task,
)
from emulator.adapters.redrive import REDRIVE_PERIOD, ExecutionNotRedrivable, redrivable_executions
from emulator.adapters.sdk import sdk_bodies_as_text, sdk_step_functions_calls
from emulator.adapters.speed import (
    parsed_definitions,
    parsed_json_paths,
    shared_service_models,
    task_clients_reused,
    work_done_once,
)
from emulator.adapters.stops import immediate_stops, outcome_before_status, timeouts_evaluated_once_stopped
from emulator.adapters.task_tokens import (
    DEFAULT_TASK_TOKEN_LENGTH,
    MAX_TASK_TOKEN_LENGTH,
    long_task_token,
    realistic_task_tokens,
    stoppable_task_token_waits,
    task_tokens_reach_started_executions,
)
from emulator.adapters.timing import MIN_TASK_TIMEOUT_SECONDS, FunctionsClock, scaled_waits

__all__ = [
    "DEFAULT_TASK_TOKEN_LENGTH",
    "EXPRESS_INVALID_ARN",
    "MAX_PAYLOAD_BYTES",
    "MAX_TASK_TOKEN_LENGTH",
    "MIN_TASK_TIMEOUT_SECONDS",
    "REDRIVE_PERIOD",
    "SYNC_POLL_SECONDS",
    "ExecutionNotRedrivable",
    "FunctionsClock",
    "Gate",
    "Handler",
    "InProcessFunction",
    "Interceptor",
    "LambdaContext",
    "LambdaRegistry",
    "alarm_refusal",
    "atomic_dynamodb_writes",
    "aws_context_timestamps",
    "aws_timestamp",
    "dynamodb_item_size_limit",
    "express_executions_unanswered",
    "express_outcome",
    "immediate_stops",
    "in_process_lambdas",
    "is_express_arn",
    "load_handler",
    "load_module",
    "long_task_token",
    "metric_alarms_checked",
    "metrics_per_function",
    "nested_workflows",
    "outcome_before_status",
    "parsed_definitions",
    "parsed_json_paths",
    "payload_size_bytes",
    "realistic_task_tokens",
    "redrivable_executions",
    "scaled_waits",
    "sdk_bodies_as_text",
    "sdk_step_functions_calls",
    "shared_service_models",
    "stack_trace",
    "step_functions_parameters",
    "step_functions_payload_limit",
    "step_functions_response",
    "stop_express_execution",
    "stoppable_task_token_waits",
    "sync_children_stop_with_their_task",
    "task_clients_reused",
    "task_tokens_reach_started_executions",
    "timeouts_evaluated_once_stopped",
    "work_done_once",
]
