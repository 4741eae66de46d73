"""The demo's sections on the two example apps (``examples/``; see ``docs/examples.md``).

Each example is an app of its own that nests the reusable envelope around its workflow; each
section deploys the example's template, as its own stack:

* User registration (seed 003): the registration event, twice; the three systems are called once.
* Sensor file (seed 002): the sample CSV uploaded to S3 starts the envelope through the
  example's EventBridge rule; the same event delivered again stores nothing twice.

Each section prints a few lines and records unmet expectations on the ``Demo`` it is given;
``emulator.demo`` runs them, and this module does not import it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import boto3

from emulator.stack import QUIET_FUNCTIONS, REGION, OfflineStack
from tools.template import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples"
REGISTRATION_TEMPLATE = EXAMPLES / "user_registration" / "template.yaml"
SENSOR_TEMPLATE = EXAMPLES / "sensor_file" / "template.yaml"
REGISTRATION_EVENT = EXAMPLES / "user_registration" / "events" / "execution_user_registration.json"
SENSOR_CSV = EXAMPLES / "sensor_file" / "events" / "sensor_readings.csv"
# The nested envelope, in each example's template.
APPLICATION = "Envelope"
REGISTRATION_CHILD, REGISTER = "UserRegistrationWorkflow", "RegisterUserFunction"
SENSOR_CHILD, PARSE = "SensorFileWorkflow", "ParseSensorReadingsFunction"
SENSOR_BUCKET, SENSOR_TABLE = "SensorFilesBucket", "SensorReadingsTable"
# The seed waits ten minutes before notifying; the demo waits 30 s (0.3 s once the emulator scales it).
SENSOR_PARAMETERS = {"NotificationDelaySeconds": 30}


class Demo(Protocol):
    """What a section needs from the demo that runs it (``emulator.demo.Demo``): where to report."""

    def expect(self, condition: bool, what: str) -> None: ...


def _deployed(template: Path, parameters: dict[str, Any] | None = None) -> OfflineStack:
    return OfflineStack(parameters, template_path=template, environment=QUIET_FUNCTIONS)


def _children(stack: OfflineStack, child: str) -> int:
    return len(stack.sfn.list_executions(stateMachineArn=stack.physical_id(child))["executions"])


def user_registration(demo: Demo) -> None:
    """The registration event twice: one child execution, three registrations, one stored result."""
    with _deployed(REGISTRATION_TEMPLATE) as stack:
        _user_registration(demo, stack)


def _user_registration(demo: Demo, stack: OfflineStack) -> None:
    envelope = stack.applications[APPLICATION]
    event = json.loads(REGISTRATION_EVENT.read_text(encoding="utf-8"))
    print(
        "\nExample: user registration (seed 003), its own app with the envelope nested "
        f"({REGISTRATION_TEMPLATE.relative_to(PROJECT_ROOT)})\n"
    )
    outputs = []
    for label in ("Run 1: a registration event", "Run 2: the same event again"):
        registers, children = stack.lambdas.invocations(REGISTER), _children(stack, REGISTRATION_CHILD)
        result = envelope.run(event)
        calls, started = (
            stack.lambdas.invocations(REGISTER) - registers,
            _children(stack, REGISTRATION_CHILD) - children,
        )
        print(f"-- {label}")
        print(
            f"   {result.status}: {len(result.states_entered)} states entered, {started} child execution(s), {calls} "
            "registration call(s)"
        )
        outputs.append((result, calls, started))
    (first, first_calls, first_started), (second, second_calls, second_started) = outputs
    demo.expect(first.status == second.status == "SUCCEEDED", "both registration runs SUCCEEDED")
    demo.expect((first_started, first_calls) == (1, 3), "run 1 started one child that registered in 3 systems")
    demo.expect((second_started, second_calls) == (0, 0), "run 2 started no child and registered nowhere")
    demo.expect(second.output == first.output, "run 2 returned run 1's output")
    if second_calls == 0 and second.output == first.output:
        print("   => registered once: the repeat returned the stored result without starting the child")


def sensor_file_upload(demo: Demo) -> None:
    """The sample CSV uploaded once and its event delivered twice: stored once, moved once."""
    with _deployed(SENSOR_TEMPLATE, SENSOR_PARAMETERS) as stack:
        _sensor_file_upload(demo, stack)


def _sensor_file_upload(demo: Demo, stack: OfflineStack) -> None:
    bucket, key = stack.physical_id(SENSOR_BUCKET), "readings/2017-01-08.csv"
    print(
        "\nExample: sensor file (seed 002), its own app, started by an S3 upload through EventBridge "
        f"({SENSOR_TEMPLATE.relative_to(PROJECT_ROOT)})\n"
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=bucket, Key=key, Body=SENSOR_CSV.read_bytes())
    delivery = _delivery_for(stack, key)
    first = stack.wait_for(delivery.payload["executionArn"])
    readings = stack.dynamodb.scan(TableName=stack.physical_id(SENSOR_TABLE), Select="COUNT")["Count"]
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    print("-- Upload: S3 event -> EventBridge rule -> front door -> envelope -> child")
    print(f"   {first.status}: {readings} readings stored; the bucket now holds {', '.join(keys)}")
    parses, children = stack.lambdas.invocations(PARSE), _children(stack, SENSOR_CHILD)
    executions = _executions(stack)
    again = _redeliver(stack, delivery)
    started = _executions(stack) - executions
    print("-- The same event delivered again (EventBridge delivers at least once)")
    print(
        f"   the front door answered {again.get('outcome')}: {len(started)} execution(s) started, "
        f"{_children(stack, SENSOR_CHILD) - children} child execution(s), {stack.lambdas.invocations(PARSE) - parses} "
        "file(s) parsed"
    )
    demo.expect(first.status == "SUCCEEDED", f"the upload was processed (got {first.status}: {first.error})")
    demo.expect(
        readings == len(SENSOR_CSV.read_text(encoding="utf-8").splitlines()), "every row was stored as a reading"
    )
    demo.expect(keys == [f"processed/{key}"], "the file was moved under processed/")
    did_no_work = again.get("result") == first.output and not started and stack.lambdas.invocations(PARSE) == parses
    demo.expect(did_no_work, "the redelivery did no work")
    if did_no_work:
        print("   => processed once; the redelivered event was answered with the stored result by one read")


def _executions(stack: OfflineStack) -> set[str]:
    machine = stack.outputs["IdempotentWorkflowArn"]
    return {e["executionArn"] for e in stack.sfn.list_executions(stateMachineArn=machine)["executions"]}


def _delivery_for(stack: OfflineStack, key: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in stack.events.wait_until_delivered():
            if delivery.event["source"] == "aws.s3" and delivery.event["detail"]["object"]["key"] == key:
                return delivery
        time.sleep(0.01)
    raise TimeoutError(f"no execution was started for the upload of {key}")


def _redeliver(stack: OfflineStack, delivery: Any) -> Any:
    """Publish the delivery's event again; the front door's answer to it."""
    event = delivery.event
    delivered = len(stack.events.wait_until_delivered())
    stack.events.put_event(event["source"], event["detail-type"], event["detail"], event["resources"])
    deadline = time.monotonic() + 10.0
    while len(stack.events.wait_until_delivered()) == delivered:
        if time.monotonic() > deadline:
            raise TimeoutError("the redelivered event reached no target")
        time.sleep(0.01)
    return stack.events.wait_until_delivered()[delivered].payload
