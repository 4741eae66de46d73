"""The stack under measurement: ``template.yaml`` deployed offline, with every counter attached.

Everything goes through ``OfflineStack``'s public API: its clients, ``lambdas.intercept`` and
``lambdas.invocations``, ``run``/``start_execution``/``wait_for``. Only the DynamoDB meter hooks
moto (see ``bench.metering``).
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator, Mapping
from typing import Any

import boto3

from bench.clock import DeclaredClock
from bench.metering import Counters, DynamoDBMeter, LambdaTimer, TaskTokens, Usage, count_step_states, item_size_bytes
from bench.prices import Cost, FunctionSpec, Prices, cost_per_million
from emulator import ExecutionResult, OfflineStack
from emulator.stack import QUIET_FUNCTIONS, is_envelope_function

FUNCTION = "AWS::Serverless::Function"
# The envelope as an Express workflow, with settings that fit in Express's five minutes.
# An Express owner cannot be asked whether it still runs: its lease outlives the execution and its calls.
EXPRESS_PARAMETERS = {
    "WorkflowType": "EXPRESS",
    "ExecutionTimeoutSeconds": 240,
    "LockLeaseSeconds": 270,
    "WaitTimeoutSeconds": 200,
}


def takes_task_token_length() -> bool:
    """Whether this emulator can hand out task tokens of a chosen length (``OfflineStack(task_token_length=)``)."""
    return "task_token_length" in inspect.signature(OfflineStack).parameters


BENCH_LONGEST_CALL_SECONDS = 2


class MeteredStack:
    """A deployed stack with its counters: runs executions and says what each used."""

    def __init__(self, stack: OfflineStack, meter: DynamoDBMeter, timer: LambdaTimer, tokens: TaskTokens) -> None:
        self.stack = stack
        self.meter = meter
        self.timer = timer
        self.tokens = tokens
        self.functions = describe_functions(stack)
        self.step_function_names = {spec.function_name for spec in self.functions.values() if not spec.envelope}
        definition = stack.sfn.describe_state_machine(stateMachineArn=stack.state_machine_arn)["definition"]
        self.clock = DeclaredClock(json.loads(definition), stack.time_scale)

    @classmethod
    @contextlib.contextmanager
    def deployed(
        cls, time_scale: float, parameters: Mapping[str, Any] | None = None, task_token_length: int | None = None
    ) -> Iterator[MeteredStack]:
        """Deploy the stack with every function timed and DynamoDB metered.

        ``task_token_length`` is passed on when the emulator takes it; ``tokens`` tells what was used.
        """
        extra: dict[str, Any] = {}
        # The example steps take milliseconds: a failed owner's key waits out 2 s for its calls, not a minute.
        parameters = {"LongestCallSeconds": BENCH_LONGEST_CALL_SECONDS, **(parameters or {})}
        if task_token_length is not None and takes_task_token_length():
            extra["task_token_length"] = task_token_length
        with contextlib.ExitStack() as exit_stack:
            stack = exit_stack.enter_context(
                OfflineStack(parameters, environment=QUIET_FUNCTIONS, time_scale=time_scale, **extra)
            )
            timer, tokens = LambdaTimer(), TaskTokens()
            for logical_id in stack.template.resources_of_type(FUNCTION):
                # Entered first, so they are the innermost interceptors: a gate added later is not timed.
                exit_stack.enter_context(stack.lambdas.intercept(logical_id, timer.interceptor(logical_id)))
                exit_stack.enter_context(stack.lambdas.intercept(logical_id, tokens))
            meter = exit_stack.enter_context(DynamoDBMeter().metering())
            yield cls(stack, meter, timer, tokens)

    @property
    def express(self) -> bool:
        return str(self.stack.parameters.get("WorkflowType", "STANDARD")) == "EXPRESS"

    def counters(self) -> Counters:
        return Counters(
            {logical_id: self.stack.lambdas.invocations(logical_id) for logical_id in self.functions},
            self.meter.snapshot(),
        )

    def usage_of(self, result: ExecutionResult, counted: Counters) -> Usage:
        return Usage(
            states_entered=len(result.states_entered),
            step_states=count_step_states(result.history, self.step_function_names),
            lambda_calls=counted.lambda_calls,
            dynamodb=counted.dynamodb,
        )

    def run(self, execution_input: Any) -> tuple[ExecutionResult, Usage]:
        """Run one execution alone and return it with what it used."""
        before = self.counters()
        result = self.stack.run(execution_input)
        return result, self.usage_of(result, self.counters().since(before))

    def step_calls(self, usage: Usage) -> int:
        """Calls of the business steps' functions (Express keeps no history to count step states from)."""
        return sum(calls for name, calls in usage.lambda_calls.items() if not self.functions[name].envelope)

    def billed_ms(self) -> dict[str, int]:
        return {name: self.timer.billed_ms(name) for name in self.functions}

    def cost(
        self,
        usage: Usage,
        prices: Prices,
        express_duration_ms: float | None = None,
        billed_ms: Mapping[str, int] | None = None,
    ) -> Cost:
        """What a million of ``usage`` cost; ``billed_ms`` replaces the functions' median billed ms where a path has
        its own."""
        return cost_per_million(
            usage, self.functions, {**self.billed_ms(), **(billed_ms or {})}, prices, express_duration_ms
        )

    def duration_ms(self, execution_arn: str) -> float:
        """The execution's duration from start to stop, as DescribeExecution (an Express one's logs) gives it (emulator
        wall time)."""
        description = self.stack.execution_description(execution_arn)
        return float((description["stopDate"] - description["startDate"]).total_seconds() * 1000)

    def record_size(self, owner_execution_arn: str) -> int:
        """Size in bytes of the record that execution owned (found by its owner, not by a key the bench computes)."""
        with self.meter.not_counted():
            pages = self.stack.dynamodb.get_paginator("scan").paginate(
                TableName=self.stack.table_name,
                ConsistentRead=True,
                FilterExpression="executionid = :owner",
                ExpressionAttributeValues={":owner": {"S": owner_execution_arn}},
            )
            items = [item for page in pages for item in page["Items"]]
        return max((item_size_bytes(item) for item in items), default=0)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment as deployed (what its module reads, on import or on its first call)."""
        configuration = _lambda_client(self.stack).get_function_configuration(
            FunctionName=self.functions[logical_id].function_name
        )
        return dict(configuration.get("Environment", {}).get("Variables", {}))


def _lambda_client(stack: OfflineStack) -> Any:
    return boto3.client("lambda", region_name=stack.sfn.meta.region_name)


def describe_functions(stack: OfflineStack) -> dict[str, FunctionSpec]:
    """Every function of the template, with its deployed memory and architecture."""
    client = _lambda_client(stack)
    functions = {}
    for logical_id in stack.template.resources_of_type(FUNCTION):
        name = stack.physical_id(logical_id)
        configuration = client.get_function_configuration(FunctionName=name)
        functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            function_name=name,
            memory_mb=int(configuration["MemorySize"]),
            architecture=(configuration.get("Architectures") or ["x86_64"])[0],
            envelope=is_envelope_function(stack.template, logical_id),
        )
    return functions
