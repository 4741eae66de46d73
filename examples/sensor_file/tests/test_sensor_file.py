"""The sensor file example (seed 002): a CSV uploaded to S3, stored once per upload.

``SensorFileWorkflow`` reads the file, checks every row, stores one item per reading with an
inline Map, moves the file under ``processed/``, waits, and notifies. The example's template
(``examples/sensor_file/template.yaml``) nests the reusable envelope around it, keyed by bucket,
object key and ETag (``IdempotencyKeyJmespath``). An upload calls the envelope's front door
through the template's EventBridge rule (emulated: S3's event on the stack's bus, the rule's
pattern and ``InputTransformer``, the function's invoke permission), as on AWS: a new upload
starts the envelope, the same event delivered again is answered from its record. Duplicates are
that event delivered again, or executions started with the input the rule built.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import ExecutionResult, OfflineStack
from emulator.adapters import load_module
from emulator.events import Delivery, transform_input
from emulator.stack import REGION
from idempotency.key import KeyRules
from idempotency.key import compute_idempotency_key as compute_key
from scripts.asl_diagram import load_definition
from tests.integration.support import QUIET, queued_messages, subscribe_queue, wait_until
from tools.template import Template

EXAMPLE = Path(__file__).resolve().parent.parent
TEMPLATE = EXAMPLE / "template.yaml"
APPLICATION = "Envelope"
CHILD = "SensorFileWorkflow"
PARSE = "ParseSensorReadingsFunction"
BUCKET = "SensorFilesBucket"
READINGS = "SensorReadingsTable"
EVENTS = EXAMPLE / "events"
SAMPLE_CSV = (EVENTS / "sensor_readings.csv").read_text(encoding="utf-8")
SAMPLE_EVENT = json.loads((EVENTS / "s3_object_created.json").read_text(encoding="utf-8"))
CHILD_DEFINITION = load_definition(EXAMPLE / "statemachine" / "sensor_file.asl.json")
# Short enough for a quick test; the emulator scales it down further (time_scale).
NOTIFICATION_DELAY_SECONDS = 20

_template = Template.load(TEMPLATE)
(TRIGGER,) = _template.resources["SensorFileUploadedRule"]["Properties"]["Targets"]
KEY_EXPRESSION = _template.resources[APPLICATION]["Properties"]["Parameters"]["IdempotencyKeyJmespath"]
MalformedSensorFileError = load_module(_template.import_roots(PARSE), "app").MalformedSensorFileError


@pytest.fixture(scope="module")
def stack() -> Iterator[OfflineStack]:
    """The example's own app: bucket, table, topic, workflow, the upload rule, and the nested envelope."""
    parameters = {"NotificationDelaySeconds": NOTIFICATION_DELAY_SECONDS, "LongestCallSeconds": 2}
    with OfflineStack(parameters, template_path=TEMPLATE, environment=QUIET) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def envelope(stack: OfflineStack) -> OfflineStack:
    """The nested envelope: its state machine (the rule's target), table and records."""
    return stack.applications[APPLICATION]


@pytest.fixture(scope="module")
def notifications(stack: OfflineStack) -> str:
    return subscribe_queue(stack, "NotificationsTopic", "sensor-file-notifications")


def compute_idempotency_key(execution_input: Any) -> str:
    """The record key of an input under the example's key expression (the envelope's IdempotencyKeyJmespath)."""
    return compute_key(execution_input, KeyRules(key_expression=KEY_EXPRESSION))


def deliveries_of(stack: OfflineStack, key: str, etag: str) -> list[Delivery]:
    """The rule's deliveries of S3's events for the object ``key`` at ``etag``, in the order delivered."""
    return [
        delivery
        for delivery in stack.events.wait_until_delivered()
        if delivery.event["source"] == "aws.s3"
        and delivery.event["detail"]["object"].get("etag") == etag
        and delivery.event["detail"]["object"]["key"] == key
    ]


def upload(stack: OfflineStack, key: str, text: str = SAMPLE_CSV) -> Delivery:
    """Put ``text`` at ``key`` in the sensor bucket; return the rule's delivery of S3's event for it
    (its payload is the front door's answer: the execution it started)."""
    s3 = boto3.client("s3", region_name=REGION)
    etag = s3.put_object(Bucket=stack.physical_id(BUCKET), Key=key, Body=text.encode())["ETag"].strip('"')
    wait_until(lambda: bool(deliveries_of(stack, key, etag)), message=f"the upload of {key} to start the envelope")
    (delivery,) = deliveries_of(stack, key, etag)
    assert not delivery.errored and delivery.payload["outcome"] == "STARTED", delivery.payload
    return delivery


def processed(stack: OfflineStack, key: str, text: str = SAMPLE_CSV) -> tuple[ExecutionResult, dict[str, Any]]:
    """Upload a file; return the execution its event started, once finished, and that execution's input."""
    delivery = upload(stack, key, text)
    result = stack.wait_for(delivery.payload["executionArn"])
    return result, execution_input(delivery.event)


def execution_input(event: dict[str, Any]) -> dict[str, Any]:
    """What the trigger's rule starts the envelope with for ``event``."""
    return json.loads(transform_input(TRIGGER["InputTransformer"], event))


def objects(stack: OfflineStack) -> set[str]:
    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=stack.physical_id(BUCKET))
    return {item["Key"] for item in listing.get("Contents", [])}


def readings_of(stack: OfflineStack, source_key: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name=REGION).Table(stack.physical_id(READINGS))
    items = table.scan()["Items"]
    return sorted(
        (item for item in items if str(item["source"]).endswith(f"/{source_key}")), key=lambda item: item["line"]
    )


def child_of(stack: OfflineStack, parent: ExecutionResult) -> ExecutionResult:
    name = parent.execution_arn.rsplit(":", 1)[1]
    (child,) = [
        e
        for e in stack.sfn.list_executions(stateMachineArn=stack.physical_id(CHILD))["executions"]
        if e["name"] == name
    ]
    return stack.wait_for(child["executionArn"])


def children_for(stack: OfflineStack, key: str) -> list[dict[str, Any]]:
    executions = stack.sfn.list_executions(stateMachineArn=stack.physical_id(CHILD))["executions"]
    return [
        e
        for e in executions
        if json.loads(stack.sfn.describe_execution(executionArn=e["executionArn"])["input"])["key"] == key
    ]


# --------------------------------------------------------------------------- the input the trigger builds
def test_the_trigger_keys_an_upload_by_bucket_object_key_and_etag() -> None:
    built = execution_input(SAMPLE_EVENT)
    detail = SAMPLE_EVENT["detail"]

    # Nothing but the upload's identity: the key expression is the envelope's parameter, not a field.
    assert built == {
        "bucket": detail["bucket"]["name"],
        "key": detail["object"]["key"],
        "etag": detail["object"]["etag"],
    }
    same_upload_again = json.loads(json.dumps(SAMPLE_EVENT))
    same_upload_again.update(id="another-event-id", time="2017-01-08T12:00:05Z")
    assert compute_idempotency_key(execution_input(same_upload_again)) == compute_idempotency_key(built)
    overwritten = json.loads(json.dumps(SAMPLE_EVENT))
    overwritten["detail"]["object"]["etag"] = "a-new-version"
    assert compute_idempotency_key(execution_input(overwritten)) != compute_idempotency_key(built)


# --------------------------------------------------------------------------- once per upload
def test_an_upload_is_stored_reading_by_reading_moved_and_notified(
    stack: OfflineStack, unique: str, notifications: str
) -> None:
    key = f"readings/{unique}.csv"

    result, started_with = processed(stack, key)

    assert result.status == "SUCCEEDED", result.cause
    rows = [line.split(",") for line in SAMPLE_CSV.splitlines()]
    stored = readings_of(stack, key)
    # Every row is a reading, also the seed's two rows of one sensor at one timestamp.
    assert [(item["sensor_uid"], int(item["timestamp"]), item["value"]) for item in stored] == [
        (sensor, int(timestamp), Decimal(value)) for sensor, timestamp, value in rows
    ]
    assert objects(stack) >= {f"processed/{key}"} and key not in objects(stack)
    assert result.output == {
        "file": {"bucket": stack.physical_id(BUCKET), "key": key, "etag": started_with["etag"]},
        "processedKey": f"processed/{key}",
        "readings": len(rows),
        "notification": result.output["notification"],
    }
    assert [m for m in queued_messages(notifications) if m.get("key") == key] == [
        {
            "event": "SensorFileProcessed",
            "bucket": stack.physical_id(BUCKET),
            "key": key,
            "processedKey": f"processed/{key}",
            "readings": len(rows),
        }
    ]


def test_the_rows_are_stored_by_an_inline_map_after_every_row_was_checked(stack: OfflineStack, unique: str) -> None:
    key = f"readings/{unique}.csv"
    parses = stack.lambdas.invocations(PARSE)

    result, _ = processed(stack, key)

    child = child_of(stack, result)
    store = CHILD_DEFINITION["States"]["Store each reading"]
    assert store["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE"
    puts = [
        e
        for e in child.history
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "putItem"
    ]
    iterations = [e for e in child.history if e["type"] == "MapIterationStarted"]
    assert len(puts) == len(iterations) == len(SAMPLE_CSV.splitlines())
    assert stack.lambdas.invocations(PARSE) - parses == 1  # one call for the whole file
    order = child.states_entered
    assert (
        order.index("Parse and check every row")
        < order.index("Store each reading")
        < order.index("Move the file to processed/")
    )
    waited = [e["timestamp"] for e in child.history if e["type"] in ("WaitStateEntered", "WaitStateExited")]
    assert (waited[1] - waited[0]).total_seconds() >= NOTIFICATION_DELAY_SECONDS * stack.time_scale


def test_concurrent_duplicate_events_process_the_file_once(
    stack: OfflineStack, envelope: OfflineStack, unique: str, notifications: str
) -> None:
    key = f"readings/{unique}.csv"
    delivery = upload(stack, key)

    # While the rule's execution runs, three more with the same input (duplicate deliveries).
    with ThreadPoolExecutor(max_workers=3) as pool:
        arns = list(pool.map(lambda _: envelope.start_execution(execution_input(delivery.event)), range(3)))
        results = list(pool.map(stack.wait_for, [delivery.payload["executionArn"], *arns]))

    assert {result.status for result in results} == {"SUCCEEDED"}
    assert all(result.output == results[0].output for result in results)
    assert len(children_for(stack, key)) == 1
    assert len([m for m in queued_messages(notifications) if m.get("key") == key]) == 1


def test_a_new_version_of_a_file_is_a_new_upload(stack: OfflineStack, unique: str) -> None:
    key = f"readings/{unique}.csv"
    first, _ = processed(stack, key)

    second, _ = processed(stack, key, "0000-0042,1483910000,1.5\n")

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert second.output["readings"] == 1
    assert len(children_for(stack, key)) == 2
    # Readings of both versions are kept: an item's key carries its file's ETag.
    assert len(readings_of(stack, key)) == len(SAMPLE_CSV.splitlines()) + 1


# --------------------------------------------------------------------------- malformed rows
def test_a_malformed_file_fails_with_every_bad_row_named_and_loses_nothing(
    stack: OfflineStack, envelope: OfflineStack, unique: str
) -> None:
    key = f"readings/{unique}.csv"
    text = "0000-0001,1483906366,10.10\n0000-0011,yesterday,-5.10\n0000-0093,1483906376\n0000-0107,1483906520,115.45\n"
    failed, started_with = processed(stack, key, text)

    assert failed.status == "FAILED"
    assert failed.error == MalformedSensorFileError.__name__
    assert failed.cause is not None
    message = json.loads(failed.cause)["errorMessage"]
    assert "line 2" in message and "TIMESTAMP 'yesterday'" in message
    assert "line 3" in message and "expected 3 fields" in message
    assert "line 1" not in message and "line 4" not in message
    # Nothing half-written: no reading stored, the file left where it was uploaded.
    assert readings_of(stack, key) == []
    assert key in objects(stack) and f"processed/{key}" not in objects(stack)
    record = envelope.get_record(compute_idempotency_key(started_with))
    assert record is not None
    assert (record["executionstatus"], record["error"]) == ("FAILED", MalformedSensorFileError.__name__)

    # The corrected file, uploaded to the same key, is a new version and is processed.
    fixed, _ = processed(stack, key, SAMPLE_CSV)
    assert fixed.status == "SUCCEEDED", fixed.cause
    assert len(readings_of(stack, key)) == len(SAMPLE_CSV.splitlines())


# --------------------------------------------------------------------------- the trigger itself
def executions_of_envelope(stack: OfflineStack) -> set[str]:
    return {
        e["executionArn"]
        for e in stack.sfn.list_executions(stateMachineArn=stack.outputs["IdempotentWorkflowArn"])["executions"]
    }


def test_one_upload_starts_one_execution_and_the_moved_copy_none(stack: OfflineStack, unique: str) -> None:
    key = f"uploads/{unique}.csv"
    before = executions_of_envelope(stack)

    result, _ = processed(stack, key)

    assert result.status == "SUCCEEDED", result.cause
    stack.events.wait_until_delivered()
    # The copy under processed/ is an upload too, which the rule's pattern leaves out.
    assert executions_of_envelope(stack) - before == {result.execution_arn}


def test_a_redelivered_upload_event_runs_the_work_once(stack: OfflineStack, unique: str, notifications: str) -> None:
    key = f"uploads/{unique}.csv"
    delivery = upload(stack, key)
    first = stack.wait_for(delivery.payload["executionArn"])
    parses = stack.lambdas.invocations(PARSE)
    before = executions_of_envelope(stack)

    # EventBridge delivers at least once: the same event again, as a new delivery. The front door
    # answers it from the record: one read, and no execution started.
    stack.events.put_event(
        "aws.s3", delivery.event["detail-type"], delivery.event["detail"], delivery.event["resources"]
    )

    etag = delivery.event["detail"]["object"]["etag"]
    wait_until(lambda: len(deliveries_of(stack, key, etag)) == 2, message="the redelivery to reach the front door")
    again = deliveries_of(stack, key, etag)[1]
    assert not again.errored, again.payload
    assert again.payload["outcome"] == "COMPLETED"
    assert again.payload["result"] == first.output
    assert executions_of_envelope(stack) == before
    assert stack.lambdas.invocations(PARSE) == parses
    assert len(children_for(stack, key)) == 1
    assert len(readings_of(stack, key)) == len(SAMPLE_CSV.splitlines())
    assert len([m for m in queued_messages(notifications) if m.get("key") == key]) == 1
