"""The emulator's EventBridge pieces the examples use: input transformers, patterns, S3's events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.events import EventBus, matches, s3_object_events, transform_input
from tools.template import UnsupportedTemplateFeature

EVENT = {"detail": {"bucket": {"name": "files"}, "object": {"key": 'in/a "b".csv', "size": 12, "etag": "abc"}}}
PATHS = {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "size": "$.detail.object.size"}


def test_a_placeholder_outside_quotes_becomes_the_value_as_json() -> None:
    built = transform_input(
        {"InputPathsMap": PATHS, "InputTemplate": '{"bucket": <bucket>, "key": <key>, "size": <size>}'}, EVENT
    )

    assert json.loads(built) == {"bucket": "files", "key": 'in/a "b".csv', "size": 12}


def test_a_placeholder_inside_a_string_becomes_the_values_text() -> None:
    built = transform_input({"InputPathsMap": PATHS, "InputTemplate": '{"note": "<key> has <size> bytes"}'}, EVENT)

    assert json.loads(built) == {"note": 'in/a "b".csv has 12 bytes'}


def test_text_around_placeholders_is_kept_as_written() -> None:
    template = '{"expression": "[\'sensor-file\', bucket]", "bucket": <bucket>}'

    assert json.loads(transform_input({"InputPathsMap": PATHS, "InputTemplate": template}, EVENT)) == {
        "expression": "['sensor-file', bucket]",
        "bucket": "files",
    }


def test_a_missing_path_gives_null() -> None:
    built = transform_input({"InputPathsMap": {"gone": "$.detail.nothing"}, "InputTemplate": '{"gone": <gone>}'}, EVENT)

    assert json.loads(built) == {"gone": None}


@pytest.mark.parametrize(
    "transformer",
    [
        {"InputPathsMap": {}, "InputTemplate": '{"event": <aws.events.event>}'},
        {"InputPathsMap": {"first": "$.detail.items[0]"}, "InputTemplate": '{"first": <first>}'},
    ],
)
def test_what_is_not_emulated_is_refused(transformer: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedTemplateFeature):
        transform_input(transformer, EVENT)


def test_anything_but_a_prefix_leaves_out_only_that_prefix() -> None:
    pattern = {"detail": {"object": {"key": [{"anything-but": {"prefix": "processed/"}}]}}}

    assert matches(pattern, {"detail": {"object": {"key": "readings/a.csv"}}})
    assert not matches(pattern, {"detail": {"object": {"key": "processed/readings/a.csv"}}})
    assert not matches(pattern, {"detail": {"object": {}}})


def test_anything_but_another_operator_is_refused() -> None:
    bus = EventBus(region="us-east-1", account_id="123456789012")

    with pytest.raises(UnsupportedTemplateFeature):
        bus.add_state_machine_rule("rule", {"detail": {"key": [{"anything-but": {"suffix": ".tmp"}}]}}, "arn")


class RecordingBus(EventBus):
    """An event bus that keeps what is published."""

    def __init__(self) -> None:
        super().__init__(region="us-east-1", account_id="123456789012")
        self.published: list[dict[str, Any]] = []

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str]) -> dict[str, Any]:
        event = super().put_event(source, detail_type, detail, resources)
        self.published.append(event)
        return event


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_s3_publishes_its_documented_events_for_buckets_with_eventbridge_on(s3: Any) -> None:
    bus = RecordingBus()
    s3.create_bucket(Bucket="with-events")
    s3.put_bucket_notification_configuration(
        Bucket="with-events", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    s3.create_bucket(Bucket="without-events")

    with s3_object_events(bus):
        etag = s3.put_object(Bucket="with-events", Key="in/a.csv", Body=b"x,1,2\n")["ETag"]
        s3.copy_object(Bucket="with-events", Key="processed/in/a.csv", CopySource="with-events/in/a.csv")
        s3.delete_object(Bucket="with-events", Key="in/a.csv")
        s3.put_object(Bucket="without-events", Key="in/b.csv", Body=b"x")

    created, copied, deleted = bus.published
    assert (created["source"], created["detail-type"]) == ("aws.s3", "Object Created")
    assert created["resources"] == ["arn:aws:s3:::with-events"]
    assert created["detail"]["bucket"] == {"name": "with-events"}
    assert created["detail"]["object"]["key"] == "in/a.csv"
    assert created["detail"]["object"]["etag"] == etag.strip('"')
    assert created["detail"]["object"]["size"] == 6
    assert created["detail"]["reason"] == "PutObject"
    assert (copied["detail"]["reason"], copied["detail"]["object"]["key"]) == ("CopyObject", "processed/in/a.csv")
    assert (deleted["detail-type"], deleted["detail"]["reason"]) == ("Object Deleted", "DeleteObject")
    assert deleted["detail"]["deletion-type"] == "Permanently Deleted"


def test_a_versioned_bucket_names_the_version(s3: Any) -> None:
    bus = RecordingBus()
    s3.create_bucket(Bucket="versioned")
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket="versioned", NotificationConfiguration={"EventBridgeConfiguration": {}}
    )

    with s3_object_events(bus):
        version = s3.put_object(Bucket="versioned", Key="a.csv", Body=b"x")["VersionId"]

    (created,) = bus.published
    assert created["detail"]["object"]["version-id"] == version


def test_deliveries_use_the_clients_made_when_the_bus_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore reads os.environ while it makes a client: made on a delivery thread, it raced a test
    # changing the environment, and the event was lost. Every client is made on the connecting thread.
    made_on: list[str] = []

    class Client:
        def start_execution(self, **request: Any) -> dict[str, Any]:
            return {"executionArn": f"{request['stateMachineArn']}:{request['name']}"}

    def make_client(service: str, region_name: str) -> Client:
        made_on.append(threading.current_thread().name)
        return Client()

    monkeypatch.setattr(boto3, "client", make_client)
    bus = EventBus(region="us-east-1", account_id="123456789012")
    bus.add_state_machine_rule("rule", {"source": ["files"]}, "arn:aws:states:us-east-1:123456789012:stateMachine:m")
    bus.connect()
    for number in range(5):
        bus.put_event("files", "Object Created", {"number": number}, [])

    deliveries = bus.wait_until_delivered()

    assert len(deliveries) == 5
    assert made_on == [threading.current_thread().name] * 2
