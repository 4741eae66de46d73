"""A stack deployed by ``sam deploy`` (or served by the local endpoint, ``make serve``), driven like ``OfflineStack``.

    with DeployedStack("idempotent-workflow", region="eu-west-1") as stack:
        result = stack.run({"orderId": "42"})
        stack.get_record(key)

The resources are found from the stack's CloudFormation outputs: the output whose value is
``!Ref`` of the template's state machine, and the one of its table. The parameters are the
stack's own. Every execution gets a unique name; leaving the ``with`` block stops the
executions this object started that still run and deletes the records it touched (the keys of
its executions' inputs, and every key it read or wrote through ``dynamodb``), so a test run
leaves a shared table as it found it.

``DeployedStack.from_environment()`` reads ``AWS_SAM_STACK_NAME`` (the variable SAM's own
templates use for integration tests) and, optionally, ``AWS_ENDPOINT_URL`` and ``AWS_REGION``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from tools.executions import FINISHED, ExecutionDidNotFinish, ExecutionResult, finished_execution
from tools.layer_import import load_modules
from tools.template import ENVELOPE_STATE_MACHINE, PROJECT_ROOT, RECORD_TABLE, TEMPLATE_PATH, Template

STACK_NAME_VARIABLE = "AWS_SAM_STACK_NAME"
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
EXECUTION_NAME_PREFIX = "itest"
LAYER_ROOT = PROJECT_ROOT / "envelope" / "layers" / "idempotency"

# Loaded together, so that the errors key.identify raises are the errors module's classes caught here.
_key, _errors = load_modules(LAYER_ROOT, "idempotency.key", "idempotency.errors")
_record, _slots = load_modules(LAYER_ROOT, "idempotency.record", "idempotency.waiter_slots")
_DESERIALIZE = TypeDeserializer().deserialize


class StackNotFound(LookupError):
    """No CloudFormation stack of that name where we looked (endpoint and region)."""


class EmulatorOnlyFeature(RuntimeError):
    """The test asked a deployed stack for something only the offline emulator offers."""


def describe_stack(cloudformation: Any, stack_name: str) -> dict[str, Any]:
    """``DescribeStacks`` of one stack, or ``StackNotFound`` naming where it was looked for."""
    try:
        (description,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in str(error):
            raise
        where = cloudformation.meta.endpoint_url
        raise StackNotFound(
            f"Stack {stack_name!r} not found at {where} (region {cloudformation.meta.region_name}). "
            "Deploy it (sam deploy) or start the local endpoint (make serve)."
        ) from None
    return description


NESTED_STACK = "AWS::CloudFormation::Stack"


def envelope_stack(cloudformation: Any, stack_name: str, output_names: tuple[str, ...]) -> dict[str, Any]:
    """``DescribeStacks`` of the stack that has ``output_names`` (the envelope's outputs): ``stack_name``
    itself, or the one stack nested in it (at any depth) that has them, as when an app nests the envelope.

    Raises ``StackNotFound`` when neither it nor exactly one nested stack has them.
    """
    description = describe_stack(cloudformation, stack_name)
    missing = [name for name in output_names if name not in stack_outputs(description)]
    if not missing:
        return description
    found = list(_nested_envelope_stacks(cloudformation, description["StackId"], output_names))
    if len(found) == 1:
        return found[0]
    outputs = ", ".join(sorted(stack_outputs(description))) or "none"
    if not found:
        raise StackNotFound(
            f"Stack {stack_name!r} has no output {', '.join(missing)} (outputs: {outputs}), "
            "and no stack nested in it has them: is the envelope deployed in it?"
        )
    names = ", ".join(str(nested["StackName"]) for nested in found)
    raise StackNotFound(
        f"Stack {stack_name!r} nests {len(found)} envelopes ({names}): name one of them with --stack-name"
    )


def _nested_envelope_stacks(cloudformation: Any, stack_id: str, output_names: tuple[str, ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for resource in page["StackResourceSummaries"]:
            if resource.get("ResourceType") != NESTED_STACK or not resource.get("PhysicalResourceId"):
                continue
            nested = describe_stack(cloudformation, resource["PhysicalResourceId"])
            if all(name in stack_outputs(nested) for name in output_names):
                found.append(nested)
            else:
                found += _nested_envelope_stacks(cloudformation, nested["StackId"], output_names)
    return found


def output_name(template: Template, logical_id: str) -> str:
    """The template output whose value is ``!Ref`` of the resource ``logical_id``."""
    for name, output in template.body.get("Outputs", {}).items():
        if output.get("Value") == {"Ref": logical_id}:
            return name
    raise LookupError(f"template.yaml has no output with the value !Ref {logical_id}")


def stack_outputs(description: Mapping[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in description.get("Outputs", [])}


def table_name_of_stack(cloudformation: Any, stack_name: str, template: Template | None = None) -> str:
    """The idempotency table of a deployed stack, from its outputs."""
    template = template or Template.load()
    outputs = stack_outputs(describe_stack(cloudformation, stack_name))
    name = output_name(template, RECORD_TABLE)
    if name not in outputs:
        raise StackNotFound(
            f"Stack {stack_name!r} has no output {name}; outputs: {', '.join(sorted(outputs)) or 'none'}"
        )
    return outputs[name]


class DeployedStack:
    """A deployed stack of this template, with the methods the integration tests use on ``OfflineStack``.

    Args:
        stack_name: the CloudFormation stack name (``sam deploy``'s ``stack_name``).
        endpoint_url: an endpoint other than AWS (e.g. the local one of ``emulator.server``).
        region: the stack's region; by default the one boto3 is configured with.
        execution_timeout: how long ``run`` and ``wait_for`` wait for an execution, in seconds.
        template_path: the template the stack was deployed from (for output and parameter names).
    """

    def __init__(
        self,
        stack_name: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        execution_timeout: float = 120.0,
        template_path: Path = TEMPLATE_PATH,
    ) -> None:
        session = boto3.session.Session(region_name=region)
        if session.region_name is None:
            raise ValueError(f"No region for stack {stack_name!r}: set AWS_REGION (or AWS_DEFAULT_REGION).")
        self.stack_name = stack_name
        self.template = Template.load(template_path)
        self.execution_timeout = execution_timeout
        self.cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
        # The stack itself, or the envelope nested in it (an app nesting envelope/template.yaml).
        envelope_outputs = (
            output_name(self.template, ENVELOPE_STATE_MACHINE),
            output_name(self.template, RECORD_TABLE),
        )
        description = envelope_stack(self.cloudformation, stack_name, envelope_outputs)
        self.outputs = stack_outputs(description)
        declared = self.template.body.get("Parameters", {})
        self.parameters = self.template.parameter_values(
            {
                item["ParameterKey"]: item["ParameterValue"]
                for item in description.get("Parameters", [])
                if item["ParameterKey"] in declared
            }
        )
        self.state_machine_arn, self.table_name = (self._output(name) for name in envelope_outputs)
        self._started: list[str] = []
        self._touched_keys: set[str] = set()
        # Records a test writes or reads itself (stack.dynamodb.put_item, ...) are cleaned up too.
        self.dynamodb.meta.events.register("before-parameter-build.dynamodb", self._remember_key_of_request)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> DeployedStack | None:
        """The stack named by ``AWS_SAM_STACK_NAME``, or None when it is not set."""
        stack_name = environ.get(STACK_NAME_VARIABLE)
        if not stack_name:
            return None
        try:
            return cls(
                stack_name,
                endpoint_url=environ.get(ENDPOINT_VARIABLE) or None,
                region=environ.get("AWS_REGION") or None,
            )
        except StackNotFound as error:
            raise StackNotFound(
                f"{error} {STACK_NAME_VARIABLE} names it; unset it to test on the offline emulator."
            ) from None

    def _output(self, name: str) -> str:
        if name not in self.outputs:
            raise StackNotFound(
                f"Stack {self.stack_name!r} has no output {name}; it has: {', '.join(sorted(self.outputs)) or 'none'}"
            )
        return self.outputs[name]

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> DeployedStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop this object's executions that still run, then delete every record it touched and their waiter slots."""
        self._stop_running_executions()
        # As touched, and under the envelope's scope when bare (a test may write an item under any id).
        records = [key for key in self._touched_keys if not _slots.is_waiter_slot(key)]
        touched = {*records, *(self.record_id(key) for key in records)}
        for record_id in sorted(touched):
            self.dynamodb.delete_item(TableName=self.table_name, Key={_record.ID: {"S": record_id}})
        for slot_id in self._waiter_slots_of(touched):
            self.dynamodb.delete_item(TableName=self.table_name, Key={_record.ID: {"S": slot_id}})
        self._touched_keys.clear()

    def _waiter_slots_of(self, record_ids: set[str]) -> list[str]:
        """The waiter slots in the table of these records, whichever owner handed them out (one scan, slots only)."""
        if not record_ids:
            return []
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table_name,
            ConsistentRead=True,
            ProjectionExpression="#id",
            FilterExpression="contains(#id, :infix)",
            ExpressionAttributeNames={"#id": _record.ID},
            ExpressionAttributeValues={":infix": {"S": _slots.WAITER_SLOT_INFIX}},
        )
        slot_ids = (item[_record.ID]["S"] for page in pages for item in page["Items"])
        return sorted(slot_id for slot_id in slot_ids if _slots.record_id_of_waiter_slot(slot_id) in record_ids)

    @property
    def lambdas(self) -> Any:
        raise EmulatorOnlyFeature(
            "stack.lambdas (counting or intercepting Lambda calls) exists only on the offline emulator: "
            "mark the test @pytest.mark.offline_only"
        )

    # ------------------------------------------------------------------ executions
    def start_execution(
        self, execution_input: Any = None, *, input_json: str | None = None, name: str | None = None
    ) -> str:
        """Start an execution with ``execution_input`` (any JSON value) or the raw ``input_json`` text."""
        text = (
            input_json if input_json is not None else json.dumps(execution_input, ensure_ascii=False)
        )  # UTF-8, as a client sends it
        self._remember_key_of(text)
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or f"{EXECUTION_NAME_PREFIX}-{uuid.uuid4().hex}",
            input=text,
        )["executionArn"]
        self._started.append(arn)
        return arn

    def wait_for(self, execution_arn: str, timeout: float | None = None) -> ExecutionResult:
        """Poll (backing off to once a second) until the execution finished; at most ``timeout`` seconds."""
        timeout = self.execution_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pause = 0.05
        while (description := self.sfn.describe_execution(executionArn=execution_arn))["status"] not in FINISHED:
            if time.monotonic() > deadline:
                raise ExecutionDidNotFinish(f"{execution_arn} still {description['status']} after {timeout}s")
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
        return finished_execution(self.sfn, description)

    def run(
        self, execution_input: Any = None, *, input_json: str | None = None, timeout: float | None = None
    ) -> ExecutionResult:
        """Start one execution and wait for it to finish."""
        return self.wait_for(self.start_execution(execution_input, input_json=input_json), timeout)

    # ------------------------------------------------------------------ records
    @property
    def scope(self) -> str:
        """The scope of the envelope's records: the stack's ``IdempotencyScope``, or the state machine's name."""
        return self.parameters.get(_key.SCOPE_PARAMETER) or self.state_machine_arn.rsplit(":", 1)[-1]

    def record_id(self, key: str) -> str:
        """The record id of ``key``: as it is if already scoped, else under the envelope's scope."""
        return key if _key.SCOPE_SEPARATOR in key else f"{self.scope}{_key.SCOPE_SEPARATOR}{key}"

    def get_record(self, key: str) -> dict[str, Any] | None:
        """The idempotency record of ``key`` (a record id, or a bare key of the envelope) as plain Python values, or
        None."""
        item = self.dynamodb.get_item(
            TableName=self.table_name, Key={_record.ID: {"S": self.record_id(key)}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _plain(item)

    def records(self) -> list[dict[str, Any]]:
        """Every item in the table (a shared table holds other records too)."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True)
        return [_plain(item) for page in pages for item in page["Items"]]

    def _remember_key_of_request(self, params: Mapping[str, Any], **_: Any) -> None:
        if params.get("TableName") == self.table_name:
            key = (params.get("Key") or params.get("Item") or {}).get(_record.ID, {}).get("S")
            if key:
                self._touched_keys.add(key)

    def _remember_key_of(self, input_text: str) -> None:
        try:
            rules = _key.KeyRules.from_parameters(
                key_expression=self.parameters.get(_key.KEY_EXPRESSION_PARAMETER, ""),
                allow_key_override=self.parameters.get(_key.ALLOW_OVERRIDE_PARAMETER, "true"),
                validation_expression=self.parameters.get(_key.VALIDATION_PARAMETER, ""),
            )
            self._touched_keys.add(_key.identify(json.loads(input_text), self.scope, rules).key)
        except (ValueError, _errors.IdempotencyError):
            pass  # the workflow rejects this input before writing any record

    def _stop_running_executions(self, timeout: float = 30.0) -> None:
        # A record deleted under a running execution could be written again after the cleanup.
        running = [arn for arn in self._started if self.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"]
        for arn in running:
            self.sfn.stop_execution(
                executionArn=arn, error="TestTeardown", cause="Stopped when the test module finished"
            )
        for arn in running:
            self.wait_for(arn, timeout)
        self._started.clear()


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZE(value) for name, value in item.items()}
